/**
 * A qcow2 image as a block source: guest offset → L1 → L2 → host cluster
 * (or zeros, or a compressed cluster, or the backing file), one function per
 * step as in QEMU's qcow2-cluster.c. Neighbouring clusters of one kind are
 * coalesced into one run, so contiguous data is one read of the file.
 *
 * The layer holds only the header, the L1 table and a share of the chain's
 * bounded caches; `refresh()` re-reads header and L1 and drops its cached L2
 * tables and clusters, because a running VM may have changed all of them.
 */
import { checkRange, readInto, type BlockSource, type Extent, type ExtentKind } from './blockSource.ts';
import { decompressCluster, compressedDescriptor, zstdClusterSpan } from './compressedCluster.ts';
import { isShared, releaseBuffer, takeBuffer } from './bufferPool.ts';
import { corruptError, limitError, Qcow2Error } from './errors.ts';
import { readHeader, type Qcow2Header } from './header.ts';
import { AUTOCLEAR_DATA_FILE_RAW, COMPAT_LAZY_REFCOUNTS, INCOMPAT_CORRUPT, INCOMPAT_DATA_FILE, INCOMPAT_DIRTY } from './features.ts';
import {
  SC_COMPRESSED,
  SC_INVALID,
  SC_NORMAL,
  SC_UNALLOCATED_PLAIN,
  SUBCLUSTERS_PER_CLUSTER,
  hasHostCluster,
  hostOffsetOf,
  isZero,
  sameTypeSubclusters,
  subclusterType,
  type SubclusterType,
} from './l2Entry.ts';
import { createChainCache, type ChainCache } from './metadataCache.ts';
import { zstdWasm } from './zstdWasm.ts';
import { zstdWorkerPool, type ZstdWorkerPool } from './zstdWorkers.ts';

/** Largest single read() a caller may ask for: the buffer is allocated up front. */
export const DEFAULT_MAX_READ_BYTES = 256 * 1024 * 1024;
/** Reads of the file one read() may have started and not yet finished. */
const MAX_READS_IN_FLIGHT = 256;
/** Work bound of one extent() call, in runs of the map. */
const MAX_EXTENT_RUNS = 4096;
/** Compressed clusters whose bytes lie within this distance are fetched with one read. */
const COMPRESSED_BATCH_GAP = 64 * 1024;
const COMPRESSED_BATCH_BYTES = 4 * 1024 * 1024;
/** Fewer zstd clusters than this in one read are decoded in this thread: a worker round trip would cost more. */
const MIN_WORKER_CLUSTERS = 8;

export interface Qcow2OpenOptions {
  /** How errors name the image; defaults to the file's name. */
  name?: string;
  /** Caches shared by a whole chain; a private one is made when absent. */
  cache?: ChainCache;
  maxReadBytes?: number;
}

/** One stretch of the guest disk with a single kind of mapping. */
interface Run {
  type: SubclusterType;
  /** Bytes from the requested offset. */
  length: number;
  /** SC_NORMAL: host byte offset of the first byte. SC_COMPRESSED: host offset of the compressed bytes. */
  host: number;
  /** SC_COMPRESSED: upper bound of the compressed length. */
  compressedLength: number;
  /** Where the L2 entry of the first cluster lives in the file (for error messages). */
  entryOffset: number;
}

interface PendingCompressed {
  run: Run;
  guestOffset: number;
  targetOffset: number;
}

let nextLayerId = 1;

export class Qcow2Image implements BlockSource {
  readonly format = 'qcow2';
  readonly name: string;
  header: Qcow2Header;
  /** The image below, or undefined: unallocated clusters then read as zeros. */
  backing: BlockSource | undefined;
  /** The external data file, when the image has one and it was opened. */
  dataFile: BlockSource | undefined;
  private l1: Buffer;
  private readonly cache: ChainCache;
  private readonly keyPrefix = `${nextLayerId++}:`;
  private readonly l2Loading = new Map<number, Promise<Buffer>>();
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
            track(io, this.readCompressedBatch(batch.items, target));
            batch = undefined;
          }
          batch ??= { items: [item], start: run.host, end: run.host + run.compressedLength };
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
      if (batch) track(io, this.readCompressedBatch(batch.items, target));
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
    this.cache.l2Tables.dropPrefix(this.keyPrefix);
    this.cache.clusters.dropPrefix(this.keyPrefix);
    this.l2Loading.clear();
    await this.backing?.refresh();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cache.l2Tables.dropPrefix(this.keyPrefix);
    this.cache.clusters.dropPrefix(this.keyPrefix);
    const closing = [this.file.close(), this.dataFile?.close(), this.backing?.close()];
    await settleAll(closing.filter((p): p is Promise<void> => p !== undefined));
  }

  // ---- translation -------------------------------------------------------

  /**
   * The run starting at guest `offset` (at most `maxLength` bytes): one
   * mapping type, and for data, one contiguous stretch of the host file.
   * Never crosses an L2 table; compressed clusters come one at a time.
   */
  private async mapRun(offset: number, maxLength: number): Promise<Run> {
    const { clusterBits, l2Bits, extendedL2, l1Size } = this.header;
    const clusterSize = 2 ** clusterBits;
    const l2Entries = 2 ** l2Bits;
    const clusterIndex = Math.floor(offset / clusterSize);
    const inCluster = offset - clusterIndex * clusterSize;
    const l1Index = Math.floor(clusterIndex / l2Entries);
    const l2Index = clusterIndex - l1Index * l2Entries;
    const available = Math.min(maxLength, (l2Entries - l2Index) * clusterSize - inCluster);
    const unallocated: Run = { type: SC_UNALLOCATED_PLAIN, length: available, host: 0, compressedLength: 0, entryOffset: 0 };

    if (l1Index >= l1Size) return unallocated;
    const l1EntryOffset = this.header.l1TableOffset + l1Index * 8;
    const l2Offset = hostOffsetOf(this.l1.readUInt32BE(l1Index * 8), this.l1.readUInt32BE(l1Index * 8 + 4));
    if (l2Offset === 0) return unallocated;
    if (l2Offset % clusterSize !== 0) throw corruptError(this.name, `L2 table offset ${l2Offset} in L1 entry ${l1Index} is not cluster-aligned`, l1EntryOffset);
    const table = await this.l2Table(l2Offset, l1Index, l1EntryOffset);

    const entryBytes = extendedL2 ? 16 : 8;
    const subclusterSize = clusterSize / SUBCLUSTERS_PER_CLUSTER;
    const hasDataFile = this.hasDataFile;
    let p = l2Index * entryBytes;
    const entryOffset = l2Offset + p;
    let hi = table.readUInt32BE(p);
    let lo = table.readUInt32BE(p + 4);
    let zeroBits = extendedL2 ? table.readUInt32BE(p + 8) : 0;
    let allocBits = extendedL2 ? table.readUInt32BE(p + 12) : 0;
    const firstSc = extendedL2 ? Math.floor(inCluster / subclusterSize) : 0;
    const type = subclusterType(hi, lo, extendedL2, zeroBits, allocBits, firstSc, hasDataFile);
    const guestCluster = clusterIndex * clusterSize;
    this.checkEntry(type, hi, lo, guestCluster, entryOffset);

    if (type === SC_COMPRESSED) {
      const d = compressedDescriptor(hi, lo, clusterBits);
      return { type, length: Math.min(clusterSize - inCluster, available), host: d.offset, compressedLength: d.length, entryOffset };
    }

    let length: number;
    let wholeCluster: boolean;
    if (extendedL2) {
      const count = sameTypeSubclusters(hi, lo, zeroBits, allocBits, firstSc, hasDataFile);
      length = (firstSc + count) * subclusterSize - inCluster;
      wholeCluster = firstSc + count === SUBCLUSTERS_PER_CLUSTER;
    } else {
      length = clusterSize - inCluster;
      wholeCluster = true;
    }
    const hostCluster = hostOffsetOf(hi, lo);
    let expectedHost = hostCluster + clusterSize;
    for (let index = l2Index + 1; wholeCluster && length < available && index < l2Entries; index++) {
      p = index * entryBytes;
      hi = table.readUInt32BE(p);
      lo = table.readUInt32BE(p + 4);
      if (extendedL2) {
        zeroBits = table.readUInt32BE(p + 8);
        allocBits = table.readUInt32BE(p + 12);
      }
      if (subclusterType(hi, lo, extendedL2, zeroBits, allocBits, 0, hasDataFile) !== type) break;
      // Zero and v2 rules, alignment: checked when the next run starts at this entry.
      if (type === SC_NORMAL) {
        if (hostOffsetOf(hi, lo) !== expectedHost) break;
        expectedHost += clusterSize;
      } else if (isZero(type) && this.header.version < 3) {
        break;
      }
      if (extendedL2) {
        const count = sameTypeSubclusters(hi, lo, zeroBits, allocBits, 0, hasDataFile);
        length += count * subclusterSize;
        wholeCluster = count === SUBCLUSTERS_PER_CLUSTER;
      } else {
        length += clusterSize;
      }
    }
    return { type, length: Math.min(length, available), host: type === SC_NORMAL ? hostCluster + inCluster : 0, compressedLength: 0, entryOffset };
  }

  /** QEMU's checks on the entry that starts a run (qcow2_get_host_offset). */
  private checkEntry(type: SubclusterType, hi: number, lo: number, guestCluster: number, entryOffset: number): void {
    if (type === SC_INVALID) {
      throw corruptError(this.name, `invalid extended L2 entry for guest offset ${guestCluster} (subcluster both allocated and zero, or allocated without a host cluster)`, entryOffset);
    }
    if (isZero(type) && this.header.version < 3) {
      throw corruptError(this.name, `zero cluster entry for guest offset ${guestCluster} in a version 2 image`, entryOffset);
    }
    if (type === SC_COMPRESSED && this.hasDataFile) {
      throw corruptError(this.name, `compressed cluster entry for guest offset ${guestCluster} in an image with an external data file`, entryOffset);
    }
    if (hasHostCluster(type)) {
      const host = hostOffsetOf(hi, lo);
      if (host % this.header.clusterSize !== 0) {
        throw corruptError(this.name, `host cluster offset ${host} for guest offset ${guestCluster} is not cluster-aligned`, entryOffset);
      }
      if (this.hasDataFile && host !== guestCluster) {
        throw corruptError(this.name, `external data file offset ${host} does not match guest offset ${guestCluster}`, entryOffset);
      }
    }
  }

  private async l2Table(l2Offset: number, l1Index: number, l1EntryOffset: number): Promise<Buffer> {
    const key = this.keyPrefix + l2Offset;
    const cached = this.cache.l2Tables.get(key);
    if (cached) return cached;
    let loading = this.l2Loading.get(l2Offset);
    if (!loading) {
      loading = this.loadL2Table(l2Offset, l1Index, l1EntryOffset).then(
        (table) => {
          this.cache.l2Tables.set(key, table);
          this.l2Loading.delete(l2Offset);
          return table;
        },
        (err: unknown) => {
          this.l2Loading.delete(l2Offset);
          throw err;
        },
      );
      this.l2Loading.set(l2Offset, loading);
    }
    return loading;
  }

  private async loadL2Table(l2Offset: number, l1Index: number, l1EntryOffset: number): Promise<Buffer> {
    const bytes = this.header.clusterSize;
    if (!(await this.fits(this.file, l2Offset, bytes))) {
      throw corruptError(this.name, `L2 table ${l1Index} at offset ${l2Offset} lies past the end of the file (${this.file.size} bytes)`, l1EntryOffset);
    }
    return this.file.read(l2Offset, bytes);
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

  /** Compressed clusters whose bytes lie close together in the file: one read, then one decompression per cluster. */
  private async readCompressedBatch(batch: PendingCompressed[], target: Buffer): Promise<void> {
    const clusterSize = this.header.clusterSize;
    const pending: PendingCompressed[] = [];
    for (const item of batch) {
      const cached = this.cache.clusters.get(this.keyPrefix + item.run.host);
      if (cached) {
        const from = item.guestOffset % clusterSize;
        cached.copy(target, item.targetOffset, from, from + item.run.length);
      } else {
        pending.push(item);
      }
    }
    if (pending.length === 0) return;
    let start = Infinity;
    let end = 0;
    for (const { run } of pending) {
      start = Math.min(start, run.host);
      end = Math.max(end, run.host + run.compressedLength);
    }
    await this.fits(this.file, end, 0);
    end = Math.min(end, this.file.size);
    for (const item of pending) if (item.run.host >= end) throw this.compressedPastEnd(item);
    const scratch = takeBuffer(end - start);
    try {
      await readInto(this.file, scratch, 0, start, end - start);
      const bytes = scratch.subarray(0, end - start);
      let inThread = pending;
      if (this.header.compressionType === 'zstd' && pending.length >= MIN_WORKER_CLUSTERS) {
        const pool = zstdWorkerPool((await zstdWasm()).module);
        if (pool) inThread = await this.decompressInWorkers(pool, pending, bytes, start, target);
      }
      for (const item of inThread) {
        const src = this.compressedBytes(item, bytes, start);
        const whole = item.run.length === clusterSize;
        const out = whole ? target.subarray(item.targetOffset, item.targetOffset + clusterSize) : Buffer.allocUnsafe(clusterSize);
        if (!(await decompressCluster(this.header.compressionType, src, out))) throw this.undecodable(item, src.length);
        if (!whole) this.placeCluster(item, out, target);
      }
    } finally {
      releaseBuffer(scratch);
    }
  }

  /** The bytes of a compressed cluster within `bytes` (read from host offset `start`). */
  private compressedBytes(item: PendingCompressed, bytes: Buffer, start: number): Buffer {
    const { run } = item;
    // The descriptor counts whole sectors; the last cluster of the file may end inside its last one.
    return bytes.subarray(run.host - start, Math.min(run.host + run.compressedLength - start, bytes.length));
  }

  /** A decompressed cluster the read covers only part of: keep it for the reads of the rest. */
  private placeCluster(item: PendingCompressed, cluster: Buffer, target: Buffer): void {
    this.cache.clusters.set(this.keyPrefix + item.run.host, cluster);
    const from = item.guestOffset % this.header.clusterSize;
    cluster.copy(target, item.targetOffset, from, from + item.run.length);
  }

  private undecodable(item: PendingCompressed, length: number): Error {
    const clusterSize = this.header.clusterSize;
    return corruptError(
      this.name,
      `compressed cluster for guest offset ${item.guestOffset - (item.guestOffset % clusterSize)} (${length} bytes at host offset ${item.run.host}) does not decompress to one ${this.header.compressionType === 'zstd' ? 'zstd' : 'deflate'} cluster`,
      item.run.entryOffset,
    );
  }

  /**
   * Decompress zstd clusters on the worker threads, split evenly between
   * them. Returns the clusters left for this thread: those whose frames do not
   * declare their sizes, and all of them if the workers fail.
   */
  private async decompressInWorkers(pool: ZstdWorkerPool, pending: PendingCompressed[], bytes: Buffer, start: number, target: Buffer): Promise<PendingCompressed[]> {
    const clusterSize = this.header.clusterSize;
    const left: PendingCompressed[] = [];
    const spans: Array<{ item: PendingCompressed; src: Buffer }> = [];
    for (const item of pending) {
      const src = this.compressedBytes(item, bytes, start);
      const span = zstdClusterSpan(src, clusterSize);
      if (span === 'invalid') throw this.undecodable(item, src.length);
      if (span === 'frame-by-frame') left.push(item);
      else spans.push({ item, src: src.subarray(0, span) });
    }
    const parts = Math.min(pool.size, Math.ceil(spans.length / MIN_WORKER_CLUSTERS));
    const groups = Array.from({ length: parts }, (_, g) => spans.slice(Math.floor((g * spans.length) / parts), Math.floor(((g + 1) * spans.length) / parts)));
    const sharedTarget = isShared(target);
    const results = await Promise.allSettled(
      groups.map(async (group) => {
        // Whole clusters of a shared target are written in place; otherwise through shared scratch memory.
        const direct = sharedTarget && group.every((s) => s.item.run.length === clusterSize);
        const scratch = direct ? undefined : takeBuffer(group.length * clusterSize);
        const output = scratch ?? target;
        const items = new Int32Array(group.length * 3);
        group.forEach((s, i) => {
          const outOffset = scratch ? scratch.byteOffset + i * clusterSize : target.byteOffset + s.item.targetOffset;
          items.set([s.src.byteOffset, s.src.length, outOffset], i * 3);
        });
        try {
          const result = await pool.run({ input: bytes.buffer as SharedArrayBuffer, output: output.buffer as SharedArrayBuffer, items, clusterSize });
          group.forEach((s, i) => {
            if (!result.ok[i]) throw this.undecodable(s.item, s.src.length);
            if (!scratch) return;
            const cluster = scratch.subarray(i * clusterSize, (i + 1) * clusterSize);
            if (s.item.run.length === clusterSize) cluster.copy(target, s.item.targetOffset);
            else this.placeCluster(s.item, Buffer.from(cluster), target);
          });
        } finally {
          if (scratch) releaseBuffer(scratch);
        }
      }),
    );
    for (const [g, r] of results.entries()) {
      if (r.status === 'fulfilled') continue;
      if (r.reason instanceof Qcow2Error) throw r.reason;
      // The workers are gone: this thread decodes their share.
      left.push(...groups[g].map((s) => s.item));
    }
    return left;
  }

  private compressedPastEnd(item: PendingCompressed): Error {
    return corruptError(this.name, `compressed cluster for guest offset ${item.guestOffset} is at host offset ${item.run.host}, past the end of the file (${this.file.size} bytes)`, item.run.entryOffset);
  }

  /** Whether [offset, offset+length) starts inside `source`, re-reading its size once: a live image grows. */
  private async fits(source: BlockSource, offset: number, length: number): Promise<boolean> {
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

interface CompressedBatch {
  items: PendingCompressed[];
  /** Span of host bytes the batch reads. */
  start: number;
  end: number;
}

/** Add `item` to `batch` when its compressed bytes lie close to the batch's and the span stays small. */
function joinBatch(batch: CompressedBatch, item: PendingCompressed): boolean {
  const start = Math.min(batch.start, item.run.host);
  const end = Math.max(batch.end, item.run.host + item.run.compressedLength);
  const near = item.run.host <= batch.end + COMPRESSED_BATCH_GAP && item.run.host + item.run.compressedLength + COMPRESSED_BATCH_GAP >= batch.start;
  if (!near || end - start > COMPRESSED_BATCH_BYTES) return false;
  batch.items.push(item);
  batch.start = start;
  batch.end = end;
  return true;
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

