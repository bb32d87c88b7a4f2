/**
 * Decompressing btrfs extents, each method through a kept library: zlib
 * (node:zlib), LZO (the `lzo` package: minilzo's lzo1x_decompress_safe) in
 * btrfs's own framing, and zstd (libzstd's decoder from zstddec, shared with
 * qcow2-js). Output never exceeds the extent's ram_bytes, which is itself
 * bounded (128 KiB for data extents, as the kernel writes them), so a lying
 * extent costs at most that much memory.
 */
import { constants as zlibConstants, inflateSync } from 'node:zlib';
import { COMPRESS, COMPRESS_NAMES } from './layout.ts';

/** BTRFS_MAX_UNCOMPRESSED and BTRFS_MAX_COMPRESSED. */
export const MAX_UNCOMPRESSED = 128 * 1024;
export const MAX_COMPRESSED = 128 * 1024;

export class DecompressionProblem extends Error {}

/** `input` (one compressed extent, padding included) decompressed to exactly `ramBytes` bytes (zero-filled past the stream's end, as the kernel does). */
export async function decompressExtent(method: number, input: Buffer, ramBytes: number, sectorsize: number): Promise<Buffer> {
  if (ramBytes > MAX_UNCOMPRESSED) throw new DecompressionProblem(`ram_bytes ${ramBytes} is above the ${MAX_UNCOMPRESSED}-byte most a compressed extent holds`);
  if (input.length > MAX_COMPRESSED + sectorsize) throw new DecompressionProblem(`${input.length} compressed bytes is above the ${MAX_COMPRESSED}-byte most a compressed extent holds`);
  const out = Buffer.alloc(ramBytes);
  switch (method) {
    case COMPRESS.ZLIB:
      inflateInto(input, out);
      return out;
    case COMPRESS.LZO:
      await lzoInto(input, out, sectorsize);
      return out;
    case COMPRESS.ZSTD:
      await zstdInto(input, out);
      return out;
    default:
      throw new DecompressionProblem(`compression type ${method} (${COMPRESS_NAMES[method] ?? 'unknown'})`);
  }
}

function inflateInto(input: Buffer, out: Buffer): void {
  let data: Buffer;
  try {
    // A sync flush at the end tolerates a stream the writer ended without a final block, as the kernel's inflate loop does.
    data = inflateSync(input, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: Math.max(1, out.length) });
  } catch (err) {
    throw new DecompressionProblem(`zlib: ${(err as Error).message}`);
  }
  data.copy(out, 0, 0, Math.min(data.length, out.length));
}

let lzoModule: Promise<typeof import('lzo')> | undefined;

/**
 * btrfs's LZO framing: a 4-byte little-endian total length (itself
 * included), then segments of a 4-byte length and that many bytes of
 * lzo1x data, each decompressing to at most one sector. A segment header
 * never straddles a sector: when fewer than 4 bytes are left in the sector,
 * they are zero padding and the next header starts at the next sector.
 */
async function lzoInto(input: Buffer, out: Buffer, sectorsize: number): Promise<void> {
  lzoModule ??= import('lzo');
  const lzo = (await lzoModule).default ?? (await lzoModule);
  if (input.length < 4) throw new DecompressionProblem('lzo: no length header');
  const total = input.readUInt32LE(0);
  if (total < 4 || total > input.length) throw new DecompressionProblem(`lzo: total length ${total} does not fit the ${input.length}-byte extent`);
  let pos = 4;
  let written = 0;
  while (pos < total && written < out.length) {
    const left = sectorsize - (pos % sectorsize);
    if (left < 4) {
      pos += left;
      if (pos >= total) break;
    }
    if (pos + 4 > total) throw new DecompressionProblem(`lzo: segment header at byte ${pos} runs past the total length ${total}`);
    const segLen = input.readUInt32LE(pos);
    pos += 4;
    if (segLen === 0 || pos + segLen > total) throw new DecompressionProblem(`lzo: segment of ${segLen} bytes at byte ${pos} runs past the total length ${total}`);
    let seg: Buffer;
    try {
      seg = lzo.decompress(input.subarray(pos, pos + segLen), sectorsize);
    } catch (err) {
      throw new DecompressionProblem(`lzo: segment at byte ${pos}: ${(err as Error).message}`);
    }
    const n = Math.min(seg.length, out.length - written);
    seg.copy(out, written, 0, n);
    written += n;
    pos += segLen;
  }
}

let zstd: Promise<import('@guestlens/qcow2-js').ZstdWasm> | undefined;

async function zstdInto(input: Buffer, out: Buffer): Promise<void> {
  const { frameExtent, zstdWasm } = await import('@guestlens/qcow2-js');
  zstd ??= zstdWasm();
  // The frame is followed by zero padding up to the sector: hand the decoder exactly the frame.
  const frame = frameExtent(input, 0);
  if (!frame || frame.skippable) throw new DecompressionProblem('zstd: the extent does not begin with a complete zstd frame');
  const decoder = await zstd;
  const produced = decoder.decompress(input.subarray(0, frame.end), out);
  if (produced < 0) throw new DecompressionProblem(`zstd: libzstd rejected the ${frame.end}-byte frame (or it holds more than ${out.length} bytes)`);
}
