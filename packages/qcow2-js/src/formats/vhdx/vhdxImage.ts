/**
 * A Hyper-V VHDX image as a block source: the current header, the log
 * replayed in memory if it has to be, the region table, the metadata, then
 * guest offset → payload block → BAT entry (whose index skips the sector
 * bitmap entry that follows every chunk of payload entries) → block state.
 *
 * Block states (MS-VHDX 2.5.1.1), as QEMU reads them where it can:
 *   not present, undefined  zeros; in a differencing disk, the parent's bytes
 *   zero, unmapped          zeros
 *   fully present           the block in the file
 *   partially present       (differencing disks only) sector by sector: the
 *                           chunk's sector bitmap says which sectors are in
 *                           this file, the rest come from the parent
 * QEMU refuses differencing VHDX images; guestlens reads them.
 */
import type { BlockSource } from '@guestlens/block';
import type { ImageInfo } from '../../chain/imageInfo.ts';
import { corruptError, formatError } from '../../errors.ts';
import { createChainCache, dropLayer, type ChainCache } from '../../metadataCache.ts';
import { baseInfo } from '../common/describe.ts';
import { guidString } from '../common/guid.ts';
import { MappedImage, type MapRun } from '../common/mappedImage.ts';
import { TablePages, type TablePage } from '../common/tablePages.ts';
import { readCurrentHeader, type VhdxHeader } from './header.ts';
import {
  BAT_FILE_OFFSET_SHIFT,
  BAT_STATE_MASK,
  HEADER_SECTION_BYTES,
  MiB,
  PAYLOAD_BLOCK_FULLY_PRESENT,
  PAYLOAD_BLOCK_NOT_PRESENT,
  PAYLOAD_BLOCK_PARTIALLY_PRESENT,
  PAYLOAD_BLOCK_UNDEFINED,
  PAYLOAD_BLOCK_UNMAPPED,
  PAYLOAD_BLOCK_UNMAPPED_V095,
  PAYLOAD_BLOCK_ZERO,
  SB_BLOCK_PRESENT,
  STATE_NAMES,
} from './layout.ts';
import { replayLog } from './log.ts';
import { readMetadata, type VhdxMetadata } from './metadata.ts';
import { readRegionTable, type RegionTable } from './regionTable.ts';

/** Bytes of a sector bitmap block cached at once. */
const BITMAP_PAGE_BYTES = 4096;

export interface VhdxOpenOptions {
  name?: string;
  cache?: ChainCache;
  maxReadBytes?: number;
}

interface Layout {
  header: VhdxHeader;
  /** The file as the log leaves it. */
  view: BlockSource;
  logEntries: number;
  regions: RegionTable;
  metadata: VhdxMetadata;
  batEntries: number;
}

export class VhdxImage extends MappedImage {
  readonly format = 'vhdx';
  private bat: TablePages;
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

  static async open(file: BlockSource, options: VhdxOpenOptions = {}): Promise<VhdxImage> {
    const name = options.name ?? file.name;
    return new VhdxImage(file, await readLayout(file, name), name, options.cache ?? createChainCache(), options.maxReadBytes);
  }

  get size(): number {
    return this.layout.metadata.virtualDiskSize;
  }

  get metadata(): VhdxMetadata {
    return this.layout.metadata;
  }

  get header(): VhdxHeader {
    return this.layout.header;
  }

  /** The file as the replayed log leaves it (the file itself with an empty log): parent locators are read from it. */
  get view(): BlockSource {
    return this.layout.view;
  }

  get differencing(): boolean {
    return this.layout.metadata.hasParent;
  }

  describe(): ImageInfo {
    const { metadata: md, header, logEntries } = this.layout;
    const info = baseInfo(this.name, 'vhdx', this.size, [this.file]);
    info['cluster-size'] = md.blockSize;
    if (this.parentName !== undefined) {
      info['backing-filename'] = this.parentName;
      if (this.parentPath !== undefined) info['full-backing-filename'] = this.parentPath;
      info['backing-filename-format'] = 'vhdx';
    }
    info['format-details'] = {
      subformat: md.hasParent ? 'differencing' : md.leaveBlocksAllocated ? 'fixed' : 'dynamic',
      'block size': md.blockSize,
      'logical sector size': md.logicalSectorSize,
      'physical sector size': md.physicalSectorSize,
      'leave blocks allocated': md.leaveBlocksAllocated,
      'current header': `${header.index} (sequence number ${header.sequenceNumber})`,
      'data write guid': guidString(header.dataWriteGuid),
      log: logEntries ? `replayed in memory (${logEntries} ${logEntries === 1 ? 'entry' : 'entries'}; the file is unchanged)` : 'empty',
    };
    return info;
  }

  protected async mapRun(offset: number, maxLength: number): Promise<MapRun> {
    const md = this.layout.metadata;
    const blockSize = md.blockSize;
    const block = Math.floor(offset / blockSize);
    const inBlock = offset - block * blockSize;
    const index = batIndex(block, md.chunkRatio);
    const page = await this.bat.page(index);
    const state = stateOf(page, index);
    const kind = this.stateKind(state, index);
    if (kind === 'zero' || kind === 'backing') {
      // Neighbouring blocks that read the same way make one run.
      let length = blockSize - inBlock;
      for (let next = block + 1; length < maxLength; next++) {
        const i = batIndex(next, md.chunkRatio);
        if (i >= page.first + page.count || this.stateKind(stateOf(page, i), i) !== kind) break;
        length += blockSize;
      }
      return { kind, length: Math.min(length, maxLength) };
    }
    const fileOffset = this.blockOffset(page, index);
    let length = Math.min(maxLength, blockSize - inBlock);
    if (kind === 'partial') {
      const chunk = Math.floor(block / md.chunkRatio);
      const sector = Math.floor((offset - chunk * md.chunkRatio * blockSize) / md.logicalSectorSize);
      const run = await this.bitmapRun(chunk, sector, Math.ceil((inBlock + length) / md.logicalSectorSize) - Math.floor(inBlock / md.logicalSectorSize));
      length = Math.min(length, run.sectors * md.logicalSectorSize - (inBlock % md.logicalSectorSize));
      if (!run.present) return { kind: 'backing', length };
    } else {
      // Fully present neighbours stored one after the other in the file are one read.
      for (let next = block + 1; length < maxLength; next++) {
        const i = batIndex(next, md.chunkRatio);
        if (i >= page.first + page.count || stateOf(page, i) !== PAYLOAD_BLOCK_FULLY_PRESENT) break;
        if (this.blockOffset(page, i) !== fileOffset + (next - block) * blockSize) break;
        length = Math.min(maxLength, length + blockSize);
      }
    }
    return { kind: 'data', length, source: this.layout.view, host: fileOffset + inBlock, unit: blockSize, unitOffset: inBlock, entryOffset: this.bat.entryOffset(index) };
  }

  /** How a payload block in `state` reads: from the file, zeros, the parent, or per the sector bitmap. */
  private stateKind(state: number, index: number): 'data' | 'zero' | 'backing' | 'partial' {
    switch (state) {
      case PAYLOAD_BLOCK_NOT_PRESENT:
      case PAYLOAD_BLOCK_UNDEFINED:
        return this.differencing ? 'backing' : 'zero';
      case PAYLOAD_BLOCK_ZERO:
      case PAYLOAD_BLOCK_UNMAPPED:
      case PAYLOAD_BLOCK_UNMAPPED_V095:
        return 'zero';
      case PAYLOAD_BLOCK_FULLY_PRESENT:
        return 'data';
      case PAYLOAD_BLOCK_PARTIALLY_PRESENT:
        if (this.differencing) return 'partial';
        throw corruptError(this.name, `BAT entry ${index} is partially present in a disk without a parent`, this.bat.entryOffset(index));
      default:
        throw corruptError(this.name, `BAT entry ${index} has the reserved block state ${state}`, this.bat.entryOffset(index));
    }
  }

  /** Where a present payload block lies, checked against the file's own structures. */
  private blockOffset(page: TablePage, index: number): number {
    const at = this.bat.entryOffset(index);
    const entry = page.bytes.readBigUInt64LE((index - page.first) * 8);
    const mb = entry >> BAT_FILE_OFFSET_SHIFT;
    if (mb > BigInt(Math.floor(Number.MAX_SAFE_INTEGER / MiB))) throw corruptError(this.name, `BAT entry ${index} points beyond any file (${mb} MiB)`, at);
    const offset = Number(mb) * MiB;
    const blockSize = this.layout.metadata.blockSize;
    if (offset < HEADER_SECTION_BYTES) throw corruptError(this.name, `BAT entry ${index} points into the header section (offset ${offset})`, at);
    const clash = this.layout.regions.occupied.find((r) => offset < r.offset + r.length && r.offset < offset + blockSize);
    if (clash) throw corruptError(this.name, `BAT entry ${index} points at offset ${offset}, inside the region at ${clash.offset} (${clash.length} bytes)`, at);
    return offset;
  }

  /** Whether `sector` of `chunk` is in this file, and for how many sectors (at most `max`) that stays so. */
  private async bitmapRun(chunk: number, sector: number, max: number): Promise<{ present: boolean; sectors: number }> {
    const md = this.layout.metadata;
    const index = chunk * (md.chunkRatio + 1) + md.chunkRatio;
    const page = await this.bat.page(index);
    const state = stateOf(page, index);
    if (state !== SB_BLOCK_PRESENT) {
      throw corruptError(this.name, `chunk ${chunk} has partially present blocks but its sector bitmap block is not present (state ${state})`, this.bat.entryOffset(index));
    }
    const entry = page.bytes.readBigUInt64LE((index - page.first) * 8);
    const bitmapOffset = Number(entry >> BAT_FILE_OFFSET_SHIFT) * MiB;
    let bitmap = await this.bitmapPage(bitmapOffset, sector, index);
    let pageStart = Math.floor(sector / (BITMAP_PAGE_BYTES * 8)) * BITMAP_PAGE_BYTES * 8;
    const bit = (s: number) => (bitmap[(s - pageStart) >>> 3] >>> ((s - pageStart) & 7)) & 1;
    const present = bit(sector) === 1;
    let sectors = 1;
    while (sectors < max) {
      const s = sector + sectors;
      if (s - pageStart >= BITMAP_PAGE_BYTES * 8) {
        bitmap = await this.bitmapPage(bitmapOffset, s, index);
        pageStart = s;
      }
      if ((bit(s) === 1) !== present) break;
      sectors++;
    }
    return { present, sectors };
  }

  private async bitmapPage(bitmapOffset: number, sector: number, index: number): Promise<Buffer> {
    const pageIndex = Math.floor(sector / (BITMAP_PAGE_BYTES * 8));
    const key = `${this.keyPrefix}sb:${bitmapOffset}:${pageIndex}`;
    const cached = this.cache.l2Tables.get(key);
    if (cached) return cached;
    const at = bitmapOffset + pageIndex * BITMAP_PAGE_BYTES;
    const view = this.layout.view;
    if (bitmapOffset < HEADER_SECTION_BYTES || at + BITMAP_PAGE_BYTES > view.size) {
      throw corruptError(this.name, `the sector bitmap block at offset ${bitmapOffset} does not lie in the file (${view.size} bytes)`, this.bat.entryOffset(index));
    }
    const bytes = await view.read(at, BITMAP_PAGE_BYTES);
    this.cache.l2Tables.set(key, bytes);
    return bytes;
  }

  protected async reload(): Promise<void> {
    const layout = await readLayout(this.file, this.name);
    this.dropCaches();
    this.layout = layout;
    this.bat = this.batOf(layout);
  }

  protected override dropCaches(): void {
    this.bat.clear();
    dropLayer(this.cache.l2Tables, `${this.keyPrefix}sb:`);
  }

  private batOf(layout: Layout): TablePages {
    return new TablePages(layout.view, this.cache.l2Tables, `${this.keyPrefix}bat:`, layout.regions.bat.offset, layout.batEntries, 8, this.name, 'BAT');
  }
}

/** A payload block's BAT index: a sector bitmap entry follows every chunkRatio payload entries. */
export function batIndex(block: number, chunkRatio: number): number {
  return block + Math.floor(block / chunkRatio);
}

function stateOf(page: TablePage, index: number): number {
  return Number(page.bytes.readBigUInt64LE((index - page.first) * 8) & BAT_STATE_MASK);
}

async function readLayout(file: BlockSource, image: string): Promise<Layout> {
  const header = await readCurrentHeader(file, image);
  const replay = await replayLog(file, header, image);
  const view = replay.file;
  const regions = await readRegionTable(view, { offset: header.logOffset, length: header.logLength }, image);
  const metadata = await readMetadata(view, regions.metadata, image);
  const dataBlocks = Math.ceil(metadata.virtualDiskSize / metadata.blockSize);
  const bitmapBlocks = Math.ceil(dataBlocks / metadata.chunkRatio);
  // MS-VHDX 2.5: a differencing disk has a sector bitmap entry after every chunk; the others only between chunks.
  const batEntries = metadata.hasParent ? bitmapBlocks * (metadata.chunkRatio + 1) : dataBlocks + Math.max(0, Math.floor((dataBlocks - 1) / metadata.chunkRatio));
  if (batEntries * 8 > regions.bat.length) {
    throw formatError(image, `the BAT region (${regions.bat.length} bytes) is too small for ${batEntries} entries`, regions.bat.offset);
  }
  if (regions.bat.offset + batEntries * 8 > view.size) {
    throw corruptError(image, `the BAT (${batEntries} entries at offset ${regions.bat.offset}) runs past the end of the file (${view.size} bytes)`, regions.bat.offset);
  }
  return { header, view, logEntries: replay.entries, regions, metadata, batEntries };
}

export { STATE_NAMES };
