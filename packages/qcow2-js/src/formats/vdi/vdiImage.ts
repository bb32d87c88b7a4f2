/**
 * A VirtualBox VDI image (static or dynamic) as a block source: guest offset
 * → block map entry → block in the file, as QEMU's vdi_co_preadv reads it.
 * Blocks never written or discarded read as zeros; VDI has no backing file
 * in QEMU (differencing VDIs are refused by the header parser).
 */
import type { ImageInfo } from '../../chain/imageInfo.ts';
import type { BlockSource } from '@guestlens/block';
import { createChainCache, type ChainCache } from '../../metadataCache.ts';
import { MappedImage, type MapRun } from '../common/mappedImage.ts';
import { TablePages } from '../common/tablePages.ts';
import { baseInfo } from '../common/describe.ts';
import { corruptError } from '../../errors.ts';
import { readVdiHeader, VDI_DISCARDED, VDI_TYPE_STATIC, type VdiHeader } from './header.ts';

export interface VdiOpenOptions {
  name?: string;
  cache?: ChainCache;
  maxReadBytes?: number;
}

export class VdiImage extends MappedImage {
  readonly format = 'vdi';
  private bmap: TablePages;

  private constructor(
    file: BlockSource,
    public header: VdiHeader,
    name: string,
    private readonly cache: ChainCache,
    maxReadBytes: number | undefined,
  ) {
    super(file, name, maxReadBytes);
    this.bmap = this.blockMap(header);
  }

  static async open(file: BlockSource, options: VdiOpenOptions = {}): Promise<VdiImage> {
    const name = options.name ?? file.name;
    const header = await readVdiHeader(file, name);
    checkBlockMap(file, header, name);
    return new VdiImage(file, header, name, options.cache ?? createChainCache(), options.maxReadBytes);
  }

  get size(): number {
    return this.header.diskSize;
  }

  get static(): boolean {
    return this.header.imageType === VDI_TYPE_STATIC;
  }

  describe(): ImageInfo {
    const info = baseInfo(this.name, 'vdi', this.size, [this.file]);
    info['cluster-size'] = this.header.blockSize;
    info['format-details'] = {
      'image type': this.static ? 'static' : 'dynamic',
      'blocks allocated': this.header.blocksAllocated,
      uuid: this.header.uuidImage,
    };
    return info;
  }

  protected async mapRun(offset: number, maxLength: number): Promise<MapRun> {
    const blockSize = this.header.blockSize;
    const block = Math.floor(offset / blockSize);
    const inBlock = offset - block * blockSize;
    const page = await this.bmap.page(block);
    const entryAt = (index: number) => page.bytes.readUInt32LE((index - page.first) * 4);
    const entry = entryAt(block);
    const allocated = entry < VDI_DISCARDED;
    // Neighbouring blocks of the same kind (and, for data, contiguous in the file) make one run.
    let length = blockSize - inBlock;
    for (let next = block + 1; length < maxLength && next < page.first + page.count; next++) {
      const e = entryAt(next);
      if (allocated ? e !== entry + (next - block) : e < VDI_DISCARDED) break;
      length += blockSize;
    }
    length = Math.min(length, maxLength);
    if (!allocated) return { kind: 'zero', length };
    const host = this.header.offsetData + entry * blockSize + inBlock;
    if (!Number.isSafeInteger(host + length)) throw corruptError(this.name, `block map entry ${block} (${entry}) points beyond any file`, this.bmap.entryOffset(block));
    return { kind: 'data', length, source: this.file, host, unit: blockSize, unitOffset: inBlock, entryOffset: this.bmap.entryOffset(block) };
  }

  protected async reload(): Promise<void> {
    const header = await readVdiHeader(this.file, this.name);
    checkBlockMap(this.file, header, this.name);
    this.bmap.clear();
    this.header = header;
    this.bmap = this.blockMap(header);
  }

  protected override dropCaches(): void {
    this.bmap.clear();
  }

  private blockMap(header: VdiHeader): TablePages {
    return new TablePages(this.file, this.cache.l2Tables, `${this.keyPrefix}bmap:`, header.offsetBmap, header.blocksInImage, 4, this.name, 'block map');
  }
}

/** The block map must lie in the file: QEMU reads it whole at open. */
function checkBlockMap(file: BlockSource, header: VdiHeader, image: string): void {
  const end = header.offsetBmap + header.blocksInImage * 4;
  if (end > file.size) {
    throw corruptError(image, `block map (${header.blocksInImage} entries at offset ${header.offsetBmap}) runs past the end of the file (${file.size} bytes)`, 0x154);
  }
}
