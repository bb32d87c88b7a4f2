/**
 * A qcow2 image as a block source: guest offset → L1 → L2 → host cluster
 * (or zeros, or a compressed cluster, or the backing file). The translation
 * steps live beside this file, one each, as in QEMU's qcow2-cluster.c:
 * `clusterMap.ts` (the pure mapping of one L2 table), `l2Tables.ts` (loading
 * tables), `compressedReads.ts` (compressed clusters); this class strings them
 * together and owns the header, the L1 table and the layer's refresh.
 *
 * The layer holds only the header, the L1 table and a share of the chain's
 * bounded caches; `refresh()` re-reads header and L1 and drops its cached L2
 * tables and clusters, because a running VM may have changed all of them.
 */
import { checkRange, readInto, DEFAULT_MAX_READ_BYTES, type BlockSource, type Extent, type ExtentKind } from '@guestlens/block';
import { describeQcow2 } from './describe.ts';
import type { ImageInfo } from '../../chain/imageInfo.ts';
import { corruptError, limitError } from '../../errors.ts';
import { readHeader, type Qcow2Header } from './header.ts';
import { AUTOCLEAR_DATA_FILE_RAW, COMPAT_LAZY_REFCOUNTS, INCOMPAT_CORRUPT, INCOMPAT_DATA_FILE, INCOMPAT_DIRTY } from './features.ts';
import { SC_COMPRESSED, SC_NORMAL, isZero } from './l2Entry.ts';
import { createChainCache, dropLayer, type ChainCache } from '../../metadataCache.ts';
import { l2OffsetFromL1, locate, runInL2Table, unallocatedRun, type Run } from './clusterMap.ts';
import { L2TableLoader } from './l2Tables.ts';
import { CompressedClusterReader, joinBatch, startBatch, type CompressedBatch } from './compressedReads.ts';
import type { ImageLayer } from '../layer.ts';

export { DEFAULT_MAX_READ_BYTES } from '@guestlens/block';

/** Reads of the file one read() may have started and not yet finished. */
const MAX_READS_IN_FLIGHT = 256;
/** Work bound of one extent() call, in runs of the map. */
const MAX_EXTENT_RUNS = 4096;

export interface Qcow2OpenOptions {
  /** How errors name the image; defaults to the file's name. */
  name?: string;
  /** Caches shared by a whole chain; a private one is made when absent. */
  cache?: ChainCache;
  maxReadBytes?: number;
}

let nextLayerId = 1;

export class Qcow2Image implements ImageLayer {
  readonly format = 'qcow2';
  readonly readable = true;
  readonly name: string;
  header: Qcow2Header;
  /** The image below, or undefined: unallocated clusters then read as zeros. */
  backing: ImageLayer | undefined;
  /** The external data file, when the image has one and it was opened. */
  dataFile: BlockSource | undefined;
  private l1: Buffer;
  private readonly cache: ChainCache;
  readonly keyPrefix = `${nextLayerId++}:`;
  private readonly l2Tables: L2TableLoader;
  private readonly compressed: CompressedClusterReader;
  private readonly maxReadBytes: number;
  private closed = false;

  private constructor(
    readonly file: BlockSource,
    header: Qcow2Header,
    l1: Buffer,
    options: Qcow2OpenOptions,
  ) {
    this.name = options.name ?? file.name;
    this.header = header;
    this.l1 = l1;
    this.cache = options.cache ?? createChainCache();
    this.maxReadBytes = options.maxReadBytes ?? DEFAULT_MAX_READ_BYTES;
    this.l2Tables = new L2TableLoader(file, this.cache.l2Tables, this.keyPrefix, this.name);
    const self = this;
    this.compressed = new CompressedClusterReader({
      name: this.name,
      file,
      get header() {
        return self.header;
      },
      clusters: this.cache.clusters,
      keyPrefix: this.keyPrefix,
      fits: (offset, length) => this.fits(file, offset, length),
    });
  }

  /** Parse the qcow2 image stored in `file`. Backing file and data file are attached by the caller (see openImage). */
  static async open(file: BlockSource, options: Qcow2OpenOptions = {}): Promise<Qcow2Image> {
    const name = options.name ?? file.name;
    const header = await readHeader(file, name);
    const l1 = await readL1(file, header, name);
    return new Qcow2Image(file, header, l1, { ...options, name });
  }

  get size(): number {
    return this.header.size;
  }

  get clusterSize(): number {
    return this.header.clusterSize;
  }

  /** The image stores guest data in a separate file (incompatible feature bit 2). */
  get hasDataFile(): boolean {
    return (this.header.incompatibleFeatures & INCOMPAT_DATA_FILE) !== 0n;
  }

  get dataFileRaw(): boolean {
    return (this.header.autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) !== 0n;
  }

  get dirty(): boolean {
    return (this.header.incompatibleFeatures & INCOMPAT_DIRTY) !== 0n;
  }

  get corrupt(): boolean {
    return (this.header.incompatibleFeatures & INCOMPAT_CORRUPT) !== 0n;
  }

  get lazyRefcounts(): boolean {
    return (this.header.compatibleFeatures & COMPAT_LAZY_REFCOUNTS) !== 0n;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    this.checkReadLength(length);
    const out = Buffer.allocUnsafe(length);
    await this.readInto(out, 0, offset, length);
    return out;
  }

  async readInto(target: Buffer, targetOffset: number, offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    this.checkReadLength(length);
    this.requireOpen();
    const end = offset + length;
    const io: Promise<void>[] = [];
    let batch: CompressedBatch | undefined;
    let pos = offset;
    try {
      while (pos < end) {
        const run = await this.mapRun(pos, end - pos);
        const at = targetOffset + (pos - offset);
        if (run.type === SC_COMPRESSED) {
          const item = { run, guestOffset: pos, targetOffset: at };
          if (batch && !joinBatch(batch, item)) {
            track(io, this.compressed.readBatch(batch.items, target));
            batch = undefined;
          }
          batch ??= startBatch(item);
        } else if (run.type === SC_NORMAL) {
          track(io, this.readData(target, at, run, pos));
        } else if (isZero(run.type)) {
          target.fill(0, at, at + run.length);
        } else {
          track(io, this.readBacking(target, at, pos, run.length));
        }
        pos += run.length;
        // A fragmented image can map one read to a great many runs; bound what is in flight.
        if (io.length >= MAX_READS_IN_FLIGHT) await settleAll(io.splice(0));
      }
      if (batch) track(io, this.compressed.readBatch(batch.items, target));
    } finally {
      // Reads already started must finish (or fail) before the caller sees an error and maybe closes the file.
      await settleAll(io);
    }
  }

  async extent(offset: number, length: number): Promise<Extent> {
    checkRange(this, offset, length);
    this.requireOpen();
    let kind: ExtentKind | undefined;
    let pos = offset;
    const end = offset + length;
    for (let runs = 0; pos < end && runs < MAX_EXTENT_RUNS; runs++) {
      const run = await this.mapRun(pos, end - pos);
      let runKind: ExtentKind;
      let runLength = run.length;
      if (run.type === SC_NORMAL) runKind = 'data';
      else if (run.type === SC_COMPRESSED) runKind = 'compressed';
      else if (isZero(run.type)) runKind = 'zero';
      else if (!this.backing || pos >= this.backing.size) runKind = 'zero';
      else {
        const below = await this.backing.extent(pos, Math.min(runLength, this.backing.size - pos));
        runKind = below.kind;
        runLength = below.length;
      }
      if (kind === undefined) kind = runKind;
      else if (runKind !== kind) break;
      pos += runLength;
    }
    return { offset, length: pos - offset, kind: kind ?? 'data' };
  }

  async refresh(): Promise<void> {
    this.requireOpen();
    await this.file.refresh();
    await this.dataFile?.refresh();
    const header = await readHeader(this.file, this.name);
    const l1 = await readL1(this.file, header, this.name);
    this.header = header;
    this.l1 = l1;
    this.l2Tables.clear();
    dropLayer(this.cache.clusters, this.keyPrefix);
    await this.backing?.refresh();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.l2Tables.clear();
    dropLayer(this.cache.clusters, this.keyPrefix);
    const closing = [this.file.close(), this.dataFile?.close(), this.backing?.close()];
    await settleAll(closing.filter((p): p is Promise<void> => p !== undefined));
  }

  describe(): ImageInfo {
    return describeQcow2(this);
  }

  // ---- translation -------------------------------------------------------

  /** The run starting at guest `offset` (at most `maxLength` bytes): see clusterMap.ts. */
  private async mapRun(offset: number, maxLength: number): Promise<Run> {
    const h = this.header;
    const at = locate(h, offset, maxLength);
    if (at.l1Index >= h.l1Size) return unallocatedRun(at);
    const l2Offset = l2OffsetFromL1(h, this.l1, at.l1Index, this.name);
    if (l2Offset === 0) return unallocatedRun(at);
    const table = await this.l2Tables.table(l2Offset, h.clusterSize, at.l1Index, h.l1TableOffset + at.l1Index * 8);
    return runInL2Table(h, table, l2Offset, at, this.hasDataFile, this.name);
  }

  // ---- reading -----------------------------------------------------------

  private async readData(target: Buffer, targetOffset: number, run: Run, guestOffset: number): Promise<void> {
    const source = this.hasDataFile ? this.dataFile : this.file;
    if (!source) throw corruptError(this.name, 'external data file is not open', run.entryOffset);
    const end = run.host + run.length;
    if (end > source.size) await source.refresh();
    if (end > source.size) {
      // QEMU reads past the end of the file as zeros. Accept that for the one cluster the file ends in
      // (the tail QEMU never wrote), but a cluster that starts at or past the end is not there at all.
      const clusterSize = this.header.clusterSize;
      const firstClusterHost = run.host - (guestOffset % clusterSize);
      const missing = Math.max(0, Math.ceil((source.size - firstClusterHost) / clusterSize));
      const missingHost = firstClusterHost + missing * clusterSize;
      if (missingHost < end) {
        const missingGuest = guestOffset - (guestOffset % clusterSize) + missing * clusterSize;
        const where = source === this.file ? 'the file' : `the data file ${source.name}`;
        const entryOffset = run.entryOffset + missing * (this.header.extendedL2 ? 16 : 8);
        throw corruptError(this.name, `data for guest offset ${missingGuest} is at host offset ${missingHost}, past the end of ${where} (${source.size} bytes)`, entryOffset);
      }
    }
    const present = Math.max(0, Math.min(run.length, source.size - run.host));
    await readInto(source, target, targetOffset, run.host, present);
    if (present < run.length) target.fill(0, targetOffset + present, targetOffset + run.length);
  }

  private async readBacking(target: Buffer, targetOffset: number, guestOffset: number, length: number): Promise<void> {
    const backing = this.backing;
    // Past the end of a shorter backing image (or with none) the guest sees zeros.
    const present = backing ? Math.max(0, Math.min(length, backing.size - guestOffset)) : 0;
    if (present > 0 && backing) await readInto(backing, target, targetOffset, guestOffset, present);
    if (present < length) target.fill(0, targetOffset + present, targetOffset + length);
  }

  /** Whether [offset, offset+length) starts inside `source`, re-reading its size once: a live image grows. */
  async fits(source: BlockSource, offset: number, length: number): Promise<boolean> {
    if (offset + length <= source.size) return true;
    await source.refresh();
    return offset + length <= source.size;
  }

  private checkReadLength(length: number): void {
    if (length > this.maxReadBytes) {
      throw limitError(this.name, `read of ${length} bytes exceeds the limit of ${this.maxReadBytes} bytes per read`, 'read in smaller pieces');
    }
  }

  private requireOpen(): void {
    if (this.closed) throw new Error(`${this.name}: image already closed`);
  }
}

/**
 * Start tracking a read. Its failure is reported by settleAll once the whole
 * request is mapped; until then a handler must be attached, or Node would call
 * the rejection unhandled while the mapping waits for an L2 table.
 */
function track(io: Promise<void>[], read: Promise<void>): void {
  read.catch(() => undefined);
  io.push(read);
}

/** Wait for every promise (so none is left running against a closed file), then throw the first failure. */
async function settleAll(promises: Promise<unknown>[]): Promise<void> {
  if (promises.length === 0) return;
  const results = await Promise.allSettled(promises);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

async function readL1(file: BlockSource, header: Qcow2Header, image: string): Promise<Buffer> {
  const bytes = header.l1Size * 8;
  if (bytes === 0) return Buffer.alloc(0);
  if (header.l1TableOffset + bytes > file.size) {
    throw corruptError(image, `L1 table (${header.l1Size} entries at offset ${header.l1TableOffset}) runs past the end of the file (${file.size} bytes)`, 40);
  }
  return file.read(header.l1TableOffset, bytes);
}

