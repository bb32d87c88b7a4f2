/**
 * Compressed clusters: the L2 descriptor and decompression of exactly one
 * cluster, with QEMU's acceptance rules (block/qcow2-threads.c):
 *  - deflate: raw deflate, 4 KiB window; the stream may lack its end marker
 *    once the cluster is full, and anything it would produce beyond the
 *    cluster is ignored; producing less than a cluster is an error.
 *  - zstd: one or more frames back to back, no length prefix, ending exactly
 *    at the end of the cluster; what follows the last frame (the rest of the
 *    last 512-byte sector) is ignored.
 */
import zlib from 'node:zlib';
import type { CompressionType } from './header.ts';
import { frameExtent } from './zstdFrame.ts';
import { zstdWasm } from './zstdWasm.ts';

export interface CompressedDescriptor {
  /** Host offset of the compressed bytes (any byte alignment). */
  offset: number;
  /** Upper bound of the compressed length: whole 512-byte sectors, counted from `offset`. */
  length: number;
}

/**
 * Decode a compressed L2 entry given as its high and low 32-bit words.
 * The offset field is `62 - (cluster_bits - 8)` bits wide, followed by the
 * count of additional 512-byte sectors.
 */
export function compressedDescriptor(hi: number, lo: number, clusterBits: number): CompressedDescriptor {
  const offsetBitsInHi = 62 - (clusterBits - 8) - 32;
  const offset = (hi & ((1 << offsetBitsInHi) - 1)) * 0x1_0000_0000 + (lo >>> 0);
  const sectors = ((hi >>> offsetBitsInHi) & ((1 << (clusterBits - 8)) - 1)) + 1;
  return { offset, length: sectors * 512 - (offset % 512) };
}

const DEFLATE_OPTIONS = { windowBits: 12, finishFlush: zlib.constants.Z_SYNC_FLUSH } as const;

/**
 * Decompress one cluster of `type` from `src` into `out` (exactly one cluster long).
 * Returns false when the data does not decode to exactly one cluster (QEMU's -EIO).
 */
export async function decompressCluster(type: CompressionType, src: Buffer, out: Buffer): Promise<boolean> {
  return type === 'zstd' ? decompressZstd(src, out) : decompressDeflate(src, out);
}

async function decompressDeflate(src: Buffer, out: Buffer): Promise<boolean> {
  let result: Buffer;
  try {
    // A little more room than the cluster: zlib then needs no second output buffer to find out the stream is done.
    result = zlib.inflateRawSync(src, { ...DEFLATE_OPTIONS, maxOutputLength: out.length, chunkSize: out.length + 1024 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return inflatePrefix(src, out);
    return false;
  }
  if (result.length !== out.length) return false;
  result.copy(out);
  return true;
}

/** A stream that decodes to more than a cluster: QEMU keeps the first cluster's worth; stop there instead of inflating the rest. */
function inflatePrefix(src: Buffer, out: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const inflate = zlib.createInflateRaw({ ...DEFLATE_OPTIONS, chunkSize: 16384 });
    let filled = 0;
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      inflate.destroy();
      resolve(ok);
    };
    inflate.on('data', (chunk: Buffer) => {
      const n = Math.min(chunk.length, out.length - filled);
      chunk.copy(out, filled, 0, n);
      filled += n;
      if (filled === out.length) finish(true);
    });
    inflate.on('error', () => finish(filled === out.length));
    inflate.on('end', () => finish(filled === out.length));
    inflate.end(src);
  });
}

/**
 * The span of whole zstd frames at the start of `src` whose headers declare
 * exactly `clusterSize` bytes in all (skippable frames included), so the span
 * can be decoded in one call; 'frame-by-frame' when a frame does not declare
 * its size; 'invalid' when the frames cannot make up one cluster.
 */
export function zstdClusterSpan(src: Uint8Array, clusterSize: number): number | 'frame-by-frame' | 'invalid' {
  let declared = 0;
  let pos = 0;
  while (declared < clusterSize) {
    const frame = frameExtent(src, pos);
    if (!frame) return 'invalid';
    pos = frame.end;
    if (frame.skippable) continue;
    if (frame.contentSize === undefined) return 'frame-by-frame';
    declared += frame.contentSize;
  }
  return declared === clusterSize ? pos : 'invalid';
}

async function decompressZstd(src: Buffer, out: Buffer): Promise<boolean> {
  const decoder = await zstdWasm();
  const span = zstdClusterSpan(src, out.length);
  if (span === 'invalid') return false;
  // libzstd checks each frame: block sizes, declared content size, checksum.
  if (span !== 'frame-by-frame') return decoder.decompress(src.subarray(0, span), out) === out.length;
  // QEMU's loop: frames one after the other until the cluster is full.
  let produced = 0;
  let pos = 0;
  while (produced < out.length) {
    const frame = frameExtent(src, pos);
    if (!frame) return false;
    if (!frame.skippable) {
      const n = decoder.decompress(src.subarray(pos, frame.end), out.subarray(produced));
      if (n < 0 || (n === 0 && frame.contentSize !== 0)) return false;
      produced += n;
    }
    pos = frame.end;
  }
  return true;
}
