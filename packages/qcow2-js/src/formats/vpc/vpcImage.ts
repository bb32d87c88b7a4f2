/**
 * A VHD (QEMU's "vpc") image as a block source. Fixed disks are their
 * file's bytes; dynamic disks map guest offset → BAT entry → block (a sector
 * bitmap, then the data); differencing disks also read, sector by sector,
 * the parent wherever the block's bitmap says the child has nothing.
 *
 * Like QEMU, a dynamic disk's allocated block is read whole, its bitmap not
 * consulted (Virtual PC fills unused sectors with zeros). Unlike QEMU, which
 * reads a differencing disk as if it had no parent (its vpc driver has no
 * backing files), guestlens follows the parent locators: the guest sees the
 * parent's data where the child has none.
 */
import type { BlockSource } from '@guestlens/block';
import type { ImageInfo } from '../../chain/imageInfo.ts';
import { corruptError, formatError, unsupportedError } from '../../errors.ts';
import { createChainCache, dropLayer, type ChainCache } from '../../metadataCache.ts';
import { baseInfo } from '../common/describe.ts';
import { MappedImage, type MapRun } from '../common/mappedImage.ts';
import { TablePages } from '../common/tablePages.ts';
import { BAT_UNALLOCATED, readDynamicHeader, type DynamicHeader } from './dynamicHeader.ts';
import { readFooter, VHD_DIFFERENCING, VHD_DYNAMIC, VHD_FIXED, VHD_MAX_SECTORS, type VhdFooter } from './footer.ts';
import { virtualSectors, type SizeRule } from './geometry.ts';

export interface VpcOpenOptions {
  name?: string;
  cache?: ChainCache;
  maxReadBytes?: number;
}

interface Layout {
  footer: VhdFooter;
  size: SizeRule;
  dynamic?: DynamicHeader;
}

const TYPE_NAMES: Record<number, string> = { [VHD_FIXED]: 'fixed', [VHD_DYNAMIC]: 'dynamic', [VHD_DIFFERENCING]: 'differencing' };

export class VpcImage extends MappedImage {
  readonly format = 'vpc';
  private bat: TablePages | undefined;
  /** The name the parent was found by (for `image info`). */
  parentName?: string;
  parentPath?: string;

  private constructor(
    file: BlockSource,
    private layout: Layout,
    name: string,
    private readonly cache: ChainCache,
    maxReadBytes: number | undefined,
  ) {
    super(file, name, maxReadBytes);
    this.bat = this.batOf(layout);
  }

  static async open(file: BlockSource, options: VpcOpenOptions = {}): Promise<VpcImage> {
    const name = options.name ?? file.name;
    return new VpcImage(file, await readLayout(file, name), name, options.cache ?? createChainCache(), options.maxReadBytes);
  }

  get footer(): VhdFooter {
    return this.layout.footer;
  }

  get dynamicHeader(): DynamicHeader | undefined {
    return this.layout.dynamic;
  }

  get size(): number {
    return this.layout.size.sectors * 512;
  }

  get differencing(): boolean {
    return this.layout.footer.diskType === VHD_DIFFERENCING;
  }

  describe(): ImageInfo {
    const { footer, dynamic, size } = this.layout;
    const info = baseInfo(this.name, 'vpc', this.size, [this.file]);
    if (dynamic) info['cluster-size'] = dynamic.blockSize;
    if (this.parentName !== undefined) {
      info['backing-filename'] = this.parentName;
      if (this.parentPath !== undefined) info['full-backing-filename'] = this.parentPath;
      info['backing-filename-format'] = 'vpc';
    }
    info['format-details'] = {
      subformat: TYPE_NAMES[footer.diskType] ?? `type ${footer.diskType}`,
      'creator application': JSON.stringify(footer.creatorApp),
      'size rule': size.rule,
      'current size': Number(footer.currentSize),
      geometry: `${footer.cylinders}/${footer.heads}/${footer.sectorsPerTrack}`,
    };
    return info;
  }

  protected async mapRun(offset: number, maxLength: number): Promise<MapRun> {
    const { footer, dynamic } = this.layout;
    if (!dynamic || footer.diskType === VHD_FIXED) {
      // QEMU reads a fixed disk straight from the file, past its end as zeros.
      return { kind: 'data', length: maxLength, source: this.file, host: offset, unit: Infinity, unitOffset: 0 };
    }
    const bat = this.bat as TablePages;
    const blockSize = dynamic.blockSize;
    const block = Math.floor(offset / blockSize);
    const inBlock = offset - block * blockSize;
    const unallocated: MapRun['kind'] = this.differencing ? 'backing' : 'zero';
    if (block >= dynamic.maxTableEntries) return { kind: unallocated, length: Math.min(maxLength, blockSize - inBlock) };
    const page = await bat.page(block);
    const entryAt = (index: number) => page.bytes.readUInt32BE((index - page.first) * 4);
    const entry = entryAt(block);
    if (entry === BAT_UNALLOCATED) {
      let length = blockSize - inBlock;
      for (let next = block + 1; length < maxLength && next < page.first + page.count && entryAt(next) === BAT_UNALLOCATED; next++) length += blockSize;
      return { kind: unallocated, length: Math.min(length, maxLength) };
    }
    const blockStart = entry * 512;
    const dataStart = blockStart + dynamic.bitmapSize;
    let length = Math.min(maxLength, blockSize - inBlock);
    const entryOffset = bat.entryOffset(block);
    if (this.differencing) {
      const bitmap = await this.sectorBitmap(blockStart, dynamic.bitmapSize, entryOffset);
      const first = Math.floor(inBlock / 512);
      const present = sectorPresent(bitmap, first);
      let sectors = 1;
      while ((first + sectors) * 512 - inBlock < length && sectorPresent(bitmap, first + sectors) === present) sectors++;
      length = Math.min(length, (first + sectors) * 512 - inBlock);
      if (!present) return { kind: 'backing', length };
    }
    return { kind: 'data', length, source: this.file, host: dataStart + inBlock, unit: blockSize, unitOffset: inBlock, entryOffset };
  }

  protected async reload(): Promise<void> {
    const layout = await readLayout(this.file, this.name);
    this.dropCaches();
    this.layout = layout;
    this.bat = this.batOf(layout);
  }

  protected override dropCaches(): void {
    this.bat?.clear();
    dropLayer(this.cache.l2Tables, `${this.keyPrefix}bitmap:`);
  }

  private batOf(layout: Layout): TablePages | undefined {
    const d = layout.dynamic;
    if (!d) return undefined;
    return new TablePages(this.file, this.cache.l2Tables, `${this.keyPrefix}bat:`, d.tableOffset, d.maxTableEntries, 4, this.name, 'block allocation table');
  }

  /** The sector bitmap in front of a block: which sectors this (differencing) disk has. */
  private async sectorBitmap(blockStart: number, bytes: number, entryOffset: number): Promise<Buffer> {
    const key = `${this.keyPrefix}bitmap:${blockStart}`;
    const cached = this.cache.l2Tables.get(key);
    if (cached) return cached;
    if (blockStart + bytes > this.file.size) await this.file.refresh();
    if (blockStart + bytes > this.file.size) throw corruptError(this.name, `the sector bitmap of a block at offset ${blockStart} lies past the end of the file (${this.file.size} bytes)`, entryOffset);
    const bitmap = await this.file.read(blockStart, bytes);
    this.cache.l2Tables.set(key, bitmap);
    return bitmap;
  }
}

/** VHD sector bitmaps are big-endian in their bits: sector 0 is the top bit of byte 0. */
export function sectorPresent(bitmap: Buffer, sector: number): boolean {
  const byte = sector >>> 3;
  return byte < bitmap.length && (bitmap[byte] & (0x80 >>> (sector & 7))) !== 0;
}

async function readLayout(file: BlockSource, image: string): Promise<Layout> {
  const footer = await readFooter(file, image);
  const size = virtualSectors(footer);
  if (size.sectors > VHD_MAX_SECTORS) throw unsupportedError(image, `virtual size of ${size.sectors} sectors is larger than the 2040 GiB QEMU supports`, footer.at + 48);
  if (footer.at !== 0) {
    // QEMU takes a disk whose only footer is at its end for a fixed disk, whatever its type field says.
    if (footer.diskType !== VHD_FIXED) throw formatError(image, `footer says disk type ${footer.diskType}, but a dynamic or differencing disk has a copy of it at offset 0`, footer.at + 60);
    return { footer, size };
  }
  if (footer.diskType === VHD_FIXED) throw formatError(image, 'a fixed disk with a footer copy at offset 0 (its data would start with the footer)', 60);
  if (footer.diskType !== VHD_DYNAMIC && footer.diskType !== VHD_DIFFERENCING) throw unsupportedError(image, `unknown VHD disk type ${footer.diskType}`, 60);
  if (footer.dataOffset > BigInt(Number.MAX_SAFE_INTEGER)) throw formatError(image, `dynamic header offset ${footer.dataOffset} is beyond any file`, 16);
  const dynamic = await readDynamicHeader(file, Number(footer.dataOffset), image);
  const sizeBytes = size.sectors * 512;
  if (dynamic.maxTableEntries * dynamic.blockSize < sizeBytes) {
    throw formatError(image, `the BAT (${dynamic.maxTableEntries} blocks of ${dynamic.blockSize} bytes) is too small for the virtual size (${sizeBytes} bytes)`, dynamic.at + 28);
  }
  return { footer, size, dynamic };
}
