/**
 * Reading compressed clusters: clusters whose compressed bytes lie close
 * together in the file are fetched with one read into a pooled buffer, then
 * each is decompressed — zstd in bulk on worker threads, everything else (and
 * small batches) in this thread. A cluster a read covers only in part is
 * kept in the chain's bounded cache for the reads of the rest of it.
 */
import { readInto, type BlockSource } from '@guestlens/block';
import { isShared, releaseBuffer, takeBuffer } from '../../bufferPool.ts';
import { corruptError, Qcow2Error } from '../../errors.ts';
import type { ByteCache } from '../../metadataCache.ts';
import { decompressCluster, zstdClusterSpan } from './compressedCluster.ts';
import type { Run } from './clusterMap.ts';
import type { Qcow2Header } from './header.ts';
import { zstdWasm } from './zstdWasm.ts';
import { zstdWorkerPool, type ZstdWorkerPool } from './zstdWorkers.ts';

/** Compressed clusters whose bytes lie within this distance are fetched with one read. */
const COMPRESSED_BATCH_GAP = 64 * 1024;
const COMPRESSED_BATCH_BYTES = 4 * 1024 * 1024;
/**
 * Fewer zstd clusters than this in one read are decoded in this thread: a
 * worker round trip (and, the first time, starting the workers) would cost
 * more. Metadata reads (df, ls) touch a few clusters at a time; only
 * streaming reads reach this many.
 */
const MIN_WORKER_CLUSTERS = 8;

export interface PendingCompressed {
  run: Run;
  guestOffset: number;
  targetOffset: number;
}

export interface CompressedBatch {
  items: PendingCompressed[];
  /** Span of host bytes the batch reads. */
  start: number;
  end: number;
}

export function startBatch(item: PendingCompressed): CompressedBatch {
  return { items: [item], start: item.run.host, end: item.run.host + item.run.compressedLength };
}

/** Add `item` to `batch` when its compressed bytes lie close to the batch's and the span stays small. */
export function joinBatch(batch: CompressedBatch, item: PendingCompressed): boolean {
  const start = Math.min(batch.start, item.run.host);
  const end = Math.max(batch.end, item.run.host + item.run.compressedLength);
  const near = item.run.host <= batch.end + COMPRESSED_BATCH_GAP && item.run.host + item.run.compressedLength + COMPRESSED_BATCH_GAP >= batch.start;
  if (!near || end - start > COMPRESSED_BATCH_BYTES) return false;
  batch.items.push(item);
  batch.start = start;
  batch.end = end;
  return true;
}

export interface CompressedReaderHost {
  readonly name: string;
  readonly file: BlockSource;
  readonly header: Qcow2Header;
  readonly clusters: ByteCache;
  readonly keyPrefix: string;
  /** Whether [offset, offset+length) starts inside the file, re-reading its size once (a live image grows). */
  fits(offset: number, length: number): Promise<boolean>;
}

export class CompressedClusterReader {
  constructor(private readonly host: CompressedReaderHost) {}

  /** Compressed clusters whose bytes lie close together in the file: one read, then one decompression per cluster. */
  async readBatch(batch: PendingCompressed[], target: Buffer): Promise<void> {
    const { header, file, clusters, keyPrefix } = this.host;
    const clusterSize = header.clusterSize;
    const pending: PendingCompressed[] = [];
    for (const item of batch) {
      const cached = clusters.get(keyPrefix + item.run.host);
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
    await this.host.fits(end, 0);
    end = Math.min(end, file.size);
    for (const item of pending) if (item.run.host >= end) throw this.pastEnd(item);
    const scratch = takeBuffer(end - start);
    try {
      await readInto(file, scratch, 0, start, end - start);
      const bytes = scratch.subarray(0, end - start);
      let inThread = pending;
      if (header.compressionType === 'zstd' && pending.length >= MIN_WORKER_CLUSTERS) {
        const pool = zstdWorkerPool((await zstdWasm()).module);
        if (pool) inThread = await this.decompressInWorkers(pool, pending, bytes, start, target);
      }
      for (const item of inThread) {
        const src = compressedBytes(item, bytes, start);
        const whole = item.run.length === clusterSize;
        const out = whole ? target.subarray(item.targetOffset, item.targetOffset + clusterSize) : Buffer.allocUnsafe(clusterSize);
        if (!(await decompressCluster(header.compressionType, src, out))) throw this.undecodable(item, src.length);
        if (!whole) this.placeCluster(item, out, target);
      }
    } finally {
      releaseBuffer(scratch);
    }
  }

  /** A decompressed cluster the read covers only part of: keep it for the reads of the rest. */
  private placeCluster(item: PendingCompressed, cluster: Buffer, target: Buffer): void {
    this.host.clusters.set(this.host.keyPrefix + item.run.host, cluster);
    const from = item.guestOffset % this.host.header.clusterSize;
    cluster.copy(target, item.targetOffset, from, from + item.run.length);
  }

  private undecodable(item: PendingCompressed, length: number): Error {
    const { header, name } = this.host;
    const clusterSize = header.clusterSize;
    return corruptError(
      name,
      `compressed cluster for guest offset ${item.guestOffset - (item.guestOffset % clusterSize)} (${length} bytes at host offset ${item.run.host}) does not decompress to one ${header.compressionType === 'zstd' ? 'zstd' : 'deflate'} cluster`,
      item.run.entryOffset,
    );
  }

  private pastEnd(item: PendingCompressed): Error {
    return corruptError(this.host.name, `compressed cluster for guest offset ${item.guestOffset} is at host offset ${item.run.host}, past the end of the file (${this.host.file.size} bytes)`, item.run.entryOffset);
  }

  /**
   * Decompress zstd clusters on the worker threads, split evenly between
   * them. Returns the clusters left for this thread: those whose frames do not
   * declare their sizes, and all of them if the workers fail.
   */
  private async decompressInWorkers(pool: ZstdWorkerPool, pending: PendingCompressed[], bytes: Buffer, start: number, target: Buffer): Promise<PendingCompressed[]> {
    const clusterSize = this.host.header.clusterSize;
    const left: PendingCompressed[] = [];
    const spans: Array<{ item: PendingCompressed; src: Buffer }> = [];
    for (const item of pending) {
      const src = compressedBytes(item, bytes, start);
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
}

/** The bytes of a compressed cluster within `bytes` (read from host offset `start`). */
function compressedBytes(item: PendingCompressed, bytes: Buffer, start: number): Buffer {
  const { run } = item;
  // The descriptor counts whole sectors; the last cluster of the file may end inside its last one.
  return bytes.subarray(run.host - start, Math.min(run.host + run.compressedLength - start, bytes.length));
}
