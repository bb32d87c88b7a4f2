/**
 * A VMDK image as a block source: guest offset → extent → (flat) the
 * extent file's bytes, or (sparse) grain directory entry → grain table →
 * grain table entry → grain, as QEMU's get_cluster_offset walks them.
 *
 * Grain table entries: 0 is not allocated (the parent's bytes through
 * parentFileNameHint, or zeros), 1 is a zeroed grain in extents with the
 * zeroed-grain flag, anything else the grain's first sector. In compressed
 * (stream-optimized) extents a grain is a marker (LBA, size) and a zlib
 * stream that inflates to at most one grain; grains stored one after the
 * other are fetched with one read and inflated on the thread pool.
 *
 * Like QEMU, reading the parent requires the parent's CID to be the
 * parentCID this descriptor records: otherwise the parent changed since the
 * child was made, and the read fails.
 */
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import type { BlockSource } from '@guestlens/block';
import type { ImageInfo, VmdkExtentInfo } from '../../chain/imageInfo.ts';
import { chainError, corruptError } from '../../errors.ts';
import { createChainCache, dropLayer, type ChainCache } from '../../metadataCache.ts';
import { baseInfo, fullBackingName } from '../common/describe.ts';
import { MappedImage, type CompressedRun, type MapRun } from '../common/mappedImage.ts';
import { TablePages } from '../common/tablePages.ts';
import { findExtent, readLayout, type ExtentOpener, type SparseExtent, type VmdkLayout } from './extents.ts';
import { GTE_ZEROED } from './sparseHeader.ts';

const inflateAsync = promisify(zlib.inflate) as (buf: Buffer, options: zlib.ZlibOptions) => Promise<Buffer>;
/**
 * Grains inflating at once on the thread pool: enough to keep libuv's four
 * threads busy; every one in flight holds a zlib stream's state (hundreds of
 * KiB), so an unbounded number would cost more memory than it gains.
 */
const MAX_INFLATING = 4;
let inflating = 0;
const waiting: (() => void)[] = [];

async function inflate(data: Buffer, options: zlib.ZlibOptions): Promise<Buffer> {
  while (inflating >= MAX_INFLATING) await new Promise<void>((resolve) => waiting.push(resolve));
  inflating++;
  try {
    return await inflateAsync(data, options);
  } finally {
    inflating--;
    waiting.shift()?.();
  }
}
/** Compressed bytes fetched with one read at most (several grains). */
const COMPRESSED_SPAN_BYTES = 4 * 1024 * 1024;
/** The grain marker in front of compressed data: LBA (8 bytes), size (4). */
const MARKER_BYTES = 12;

export interface VmdkOpenOptions {
  name?: string;
  cache?: ChainCache;
  maxReadBytes?: number;
  /** How the descriptor's extent files are opened (default: refused; the chain opener supplies the backing policy). */
  opener: ExtentOpener;
  /** The descriptor's path as opened: extent names are relative to its directory. */
  path: string;
}

export class VmdkImage extends MappedImage {
  readonly format = 'vmdk';
  /** The backing file's CID is the parentCID recorded here (QEMU's vmdk_is_cid_valid). */
  cidValid = true;
  parentName?: string;
  private grainDirectories: TablePages[];

  private constructor(
    file: BlockSource,
    public layout: VmdkLayout,
    private readonly extentFiles: BlockSource[],
    name: string,
    private readonly cache: ChainCache,
    maxReadBytes: number | undefined,
    private readonly options: VmdkOpenOptions,
  ) {
    super(file, name, maxReadBytes);
    this.grainDirectories = this.directoriesOf(layout);
  }

  static async open(file: BlockSource, options: VmdkOpenOptions): Promise<VmdkImage> {
    const name = options.name ?? file.name;
    const opened: BlockSource[] = [];
    try {
      const layout = await readLayout(file, options.path, name, options.opener, opened);
      return new VmdkImage(file, layout, opened, name, options.cache ?? createChainCache(), options.maxReadBytes, options);
    } catch (err) {
      await Promise.allSettled(opened.map((f) => f.close()));
      throw err;
    }
  }

  get size(): number {
    return this.layout.size;
  }

  get cid(): number {
    return this.layout.cid;
  }

  protected override get extraSources(): BlockSource[] {
    return this.extentFiles;
  }

  describe(): ImageInfo {
    const { layout } = this;
    const info = baseInfo(this.name, 'vmdk', this.size, [this.file, ...this.extentFiles]);
    const first = layout.extents[0];
    const same = layout.extents.every(
      (e) => e.kind === first.kind && compressed(e) === compressed(first) && (e.kind === 'flat' || (first.kind === 'sparse' && e.grainBytes === first.grainBytes)),
    );
    if (same && first.kind === 'sparse') info['cluster-size'] = first.grainBytes;
    if (this.parentName !== undefined) {
      info['backing-filename'] = this.parentName;
      info['full-backing-filename'] = fullBackingName(this.parentName, this.name);
      info['backing-filename-format'] = 'vmdk';
    }
    const extents: VmdkExtentInfo[] = layout.extents.map((e) => ({
      ...(compressed(e) ? { compressed: true } : {}),
      'virtual-size': e.bytes,
      filename: e.type === '' ? this.name : e.path,
      ...(e.kind === 'sparse' ? { 'cluster-size': e.grainBytes } : {}),
      format: e.type,
    }));
    info['format-specific'] = { type: 'vmdk', data: { cid: layout.cid, 'parent-cid': layout.parentCid, 'create-type': layout.createType, extents } };
    const versions = [...new Set(layout.extents.flatMap((e) => (e.kind === 'sparse' ? [e.header.version] : [])))];
    if (versions.length) {
      info['format-details'] = {
        'sparse extent version': versions.join(', '),
        ...(layout.extents.some((e) => e.kind === 'sparse' && e.header.fromFooter) ? { 'grain directory': 'from the footer (stream-optimized, GD at end)' } : {}),
        ...(layout.extents.some((e) => e.kind === 'sparse' && e.header.zeroedGrains) ? { 'zeroed grains': true } : {}),
      };
    }
    return info;
  }

  protected async mapRun(offset: number, maxLength: number): Promise<MapRun> {
    const extentIndex = findExtent(this.layout.extents, offset);
    const e = this.layout.extents[extentIndex];
    const rel = offset - e.start;
    const max = Math.min(maxLength, e.bytes - rel);
    if (e.kind === 'flat') {
      // QEMU reads a flat extent shorter than the descriptor says with zeros past its end.
      return { kind: 'data', length: max, source: e.file, host: e.flatOffset + rel, unit: Infinity, unitOffset: 0 };
    }
    const run = await this.sparseRun(e, extentIndex, rel, max, offset);
    if (run.kind === 'backing' && this.backing && !this.cidValid) {
      throw chainError(this.name, `its parent ${JSON.stringify(this.parentName)} has CID ${(this.backing as VmdkImage).cid ?? '?'} (or is not a VMDK), not the parentCID ${this.layout.parentCid} this disk was made over: the parent changed since`, 'QEMU refuses to read such a chain too; rebase or re-create the child');
    }
    return run;
  }

  private async sparseRun(e: SparseExtent, extentIndex: number, rel: number, max: number, guestOffset: number): Promise<MapRun> {
    const { grainBytes, header } = e;
    const gtes = header.numGTEsPerGT;
    const grain = Math.floor(rel / grainBytes);
    const inGrain = rel - grain * grainBytes;
    const gdIndex = Math.floor(grain / gtes);
    const gd = this.grainDirectories[extentIndex];
    const gdPage = await gd.page(gdIndex);
    const gtAt = (i: number) => gdPage.bytes.readUInt32LE((i - gdPage.first) * 4);
    const gtSector = gtAt(gdIndex);
    const inTable = grain - gdIndex * gtes;
    if (gtSector === 0) {
      let length = (gtes - inTable) * grainBytes - inGrain;
      for (let next = gdIndex + 1; length < max && next < gdPage.first + gdPage.count && gtAt(next) === 0; next++) length += e.gtReach;
      return { kind: 'backing', length: Math.min(length, max) };
    }
    const table = await this.grainTable(e, extentIndex, gtSector, gd.entryOffset(gdIndex));
    const entryOffset = gtSector * 512 + inTable * 4;
    const gteAt = (i: number) => table.readUInt32LE(i * 4);
    const classify = (gte: number): 'backing' | 'zero' | 'grain' => (gte === 0 ? 'backing' : header.zeroedGrains && gte === GTE_ZEROED ? 'zero' : 'grain');
    const gte = gteAt(inTable);
    const kind = classify(gte);
    let length = grainBytes - inGrain;
    if (kind !== 'grain') {
      for (let i = inTable + 1; length < max && i < gtes && classify(gteAt(i)) === kind; i++) length += grainBytes;
      return { kind, length: Math.min(length, max) };
    }
    if (!header.compressed) {
      for (let i = inTable + 1; length < max && i < gtes && gteAt(i) === gte + (i - inTable) * header.granularity; i++) length += grainBytes;
      return { kind: 'data', length: Math.min(length, max), source: e.file, host: gte * 512 + inGrain, unit: grainBytes, unitOffset: inGrain, entryOffset };
    }
    // Compressed grains stored one after the other: one read for all of them.
    const hosts = [gte * 512];
    const maxGrains = Math.max(1, Math.floor(COMPRESSED_SPAN_BYTES / (2 * grainBytes)));
    for (let i = inTable + 1; length < max && i < gtes && hosts.length < maxGrains; i++) {
      const next = gteAt(i);
      const previous = hosts[hosts.length - 1];
      if (classify(next) !== 'grain' || next * 512 <= previous || next * 512 - previous > 2 * grainBytes) break;
      hosts.push(next * 512);
      length += grainBytes;
    }
    return { kind: 'compressed', length: Math.min(length, max), source: e.file, hosts, grainStart: guestOffset - inGrain, grainSize: grainBytes, entryOffset };
  }

  protected override async readCompressed(run: CompressedRun, target: Buffer, targetOffset: number, guestOffset: number): Promise<void> {
    const { source, hosts, grainSize } = run;
    const extent = this.layout.extents[findExtent(this.layout.extents, run.grainStart)];
    const hasMarkers = extent.kind === 'sparse' && extent.header.hasMarkers;
    const end = guestOffset + run.length;
    // Which grains are needed, and which of them are cached already.
    const wanted: number[] = [];
    for (let i = 0; i < hosts.length; i++) {
      const gStart = run.grainStart + i * grainSize;
      if (gStart >= end) break;
      const cached = this.cache.clusters.get(this.grainKey(gStart));
      if (cached) this.copyGrain(cached, gStart, guestOffset, end, target, targetOffset, hosts[i], run);
      else wanted.push(i);
    }
    if (wanted.length === 0) return;
    const spanStart = hosts[wanted[0]];
    if (spanStart >= source.size) await source.refresh();
    if (spanStart >= source.size) {
      throw corruptError(this.name, `compressed grain for guest offset ${run.grainStart + wanted[0] * grainSize} is at offset ${spanStart}, past the end of the file (${source.size} bytes)`, run.entryOffset);
    }
    const spanEnd = Math.min(source.size, hosts[wanted[wanted.length - 1]] + 2 * grainSize);
    const span = await source.read(spanStart, spanEnd - spanStart);
    await Promise.all(
      wanted.map(async (i) => {
        const gStart = run.grainStart + i * grainSize;
        const from = hosts[i] - spanStart;
        const bytes = span.subarray(from, Math.min(span.length, from + 2 * grainSize));
        const grain = await this.inflateGrain(bytes, hasMarkers, grainSize, hosts[i], gStart, run);
        const partial = gStart < guestOffset || gStart + grainSize > end;
        if (partial) this.cache.clusters.set(this.grainKey(gStart), grain);
        this.copyGrain(grain, gStart, guestOffset, end, target, targetOffset, hosts[i], run);
      }),
    );
  }

  private async inflateGrain(bytes: Buffer, hasMarkers: boolean, grainSize: number, host: number, gStart: number, run: CompressedRun): Promise<Buffer> {
    let data = bytes.subarray(0, grainSize);
    if (hasMarkers) {
      const size = bytes.length >= MARKER_BYTES ? bytes.readUInt32LE(8) : 0;
      if (size === 0 || MARKER_BYTES + size > bytes.length) {
        throw corruptError(this.name, `compressed grain for guest offset ${gStart} at offset ${host}: its marker says ${size} bytes, which do not fit in the file or in two grains`, run.entryOffset);
      }
      data = bytes.subarray(MARKER_BYTES, MARKER_BYTES + size);
    }
    try {
      return await inflate(data, { maxOutputLength: grainSize });
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? 'inflates to more than a grain' : `does not inflate (${(err as Error).message})`;
      throw corruptError(this.name, `compressed grain for guest offset ${gStart} at offset ${host} ${why}`, run.entryOffset);
    }
  }

  private copyGrain(grain: Buffer, gStart: number, from: number, to: number, target: Buffer, targetOffset: number, host: number, run: CompressedRun): void {
    const a = Math.max(gStart, from);
    const b = Math.min(gStart + run.grainSize, to);
    if (b - gStart > grain.length) {
      throw corruptError(this.name, `compressed grain for guest offset ${gStart} at offset ${host} inflates to ${grain.length} bytes, short of the ${b - gStart} read`, run.entryOffset);
    }
    grain.copy(target, targetOffset + (a - from), a - gStart, b - gStart);
  }

  /** Decompressed grains are cached by their guest offset: unique in the layer. */
  private grainKey(guestOffset: number): string {
    return `${this.keyPrefix}grain:${guestOffset}`;
  }

  private async grainTable(e: SparseExtent, extentIndex: number, gtSector: number, gdEntryOffset: number): Promise<Buffer> {
    const key = `${this.keyPrefix}${extentIndex}:gt:${gtSector}`;
    const cached = this.cache.l2Tables.get(key);
    if (cached) return cached;
    const at = gtSector * 512;
    const bytes = e.header.numGTEsPerGT * 4;
    if (at + bytes > e.file.size) await e.file.refresh();
    if (at + bytes > e.file.size) throw corruptError(this.name, `grain table at offset ${at} of ${e.type === '' ? 'the file' : e.path} lies past its end (${e.file.size} bytes)`, gdEntryOffset);
    const table = await e.file.read(at, bytes);
    this.cache.l2Tables.set(key, table);
    return table;
  }

  protected async reload(): Promise<void> {
    // The descriptor and extent files stay the ones opened; their headers, directories and tables are read again.
    const reopened: BlockSource[] = [];
    const byPath = new Map(this.layout.extents.map((e) => [e.path, e.file]));
    const layout = await readLayout(this.file, this.options.path, this.name, {
      openExtent: async (ref) => {
        const same = byPath.get(ref.path);
        if (same) return same;
        const fresh = await this.options.opener.openExtent(ref);
        reopened.push(fresh);
        return fresh;
      },
    }, []);
    this.dropCaches();
    this.extentFiles.push(...reopened);
    this.layout = layout;
    this.grainDirectories = this.directoriesOf(layout);
  }

  protected override dropCaches(): void {
    for (const gd of this.grainDirectories) gd.clear();
    dropLayer(this.cache.l2Tables, this.keyPrefix);
    dropLayer(this.cache.clusters, this.keyPrefix);
  }

  private directoriesOf(layout: VmdkLayout): TablePages[] {
    return layout.extents.map((e, i) =>
      e.kind === 'sparse'
        ? new TablePages(e.file, this.cache.l2Tables, `${this.keyPrefix}${i}:gd:`, Number(e.header.gdOffset) * 512, e.gdEntries, 4, this.name, `grain directory of extent ${i}`)
        : new TablePages(e.file, this.cache.l2Tables, `${this.keyPrefix}${i}:gd:`, 0, 0, 4, this.name, 'grain directory'),
    );
  }
}

function compressed(e: VmdkLayout['extents'][number]): boolean {
  return e.kind === 'sparse' && e.header.compressed;
}
