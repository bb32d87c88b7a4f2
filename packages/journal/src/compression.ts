/**
 * Per-object decompression of DATA payloads, each through a kept library:
 *  - LZ4: systemd stores an le64 uncompressed size, then one raw LZ4 block.
 *    lz4-napi (lz4_flex) takes a block behind an le32 size, so the size is
 *    checked against the limit and the prefix rewritten;
 *  - ZSTD: one frame that must carry its content size (systemd refuses
 *    others too); libzstd as WebAssembly (zstddec, shared with qcow2-js)
 *    decodes into a buffer of exactly that size;
 *  - XZ: an .xz stream (systemd writes it without a check); xz-embedded as
 *    WebAssembly (xz-decompress), read as a stream so that a bomb is cut off
 *    at the limit instead of filling memory.
 * Every result is bounded by `maxBytes` before anything that large is allocated.
 */
import { JournalDecompressError } from './errors.ts';
import { OBJECT_COMPRESSED_LZ4, OBJECT_COMPRESSED_XZ, OBJECT_COMPRESSED_ZSTD } from './layout.ts';
import type { ZstdWasm } from '@guestlens/qcow2-js/zstd';

export type Compression = 'none' | 'xz' | 'lz4' | 'zstd';

export function compressionOf(flags: number): Compression | undefined {
  switch (flags & 7) {
    case 0: return 'none';
    case OBJECT_COMPRESSED_XZ: return 'xz';
    case OBJECT_COMPRESSED_LZ4: return 'lz4';
    case OBJECT_COMPRESSED_ZSTD: return 'zstd';
    default: return undefined; // more than one bit: systemd says EPROTONOSUPPORT
  }
}

type Lz4 = typeof import('lz4-napi');
let lz4: Lz4 | undefined;
let lz4Loading: Promise<Lz4> | undefined;
let zstd: ZstdWasm | undefined;
let zstdLoading: Promise<ZstdWasm> | undefined;
let frameExtent: typeof import('@guestlens/qcow2-js/zstd-frame').frameExtent | undefined;

/** Load the decoder of one algorithm (each is loaded on the first object that needs it). */
export async function loadDecoder(kind: Compression): Promise<void> {
  if (kind === 'lz4' && !lz4) {
    lz4Loading ??= import('lz4-napi').then((m) => (m as unknown as { default?: Lz4 }).default ?? m);
    lz4 = await lz4Loading;
  } else if (kind === 'zstd' && !zstd) {
    zstdLoading ??= import('@guestlens/qcow2-js/zstd').then((m) => m.zstdWasm());
    frameExtent ??= (await import('@guestlens/qcow2-js/zstd-frame')).frameExtent;
    zstd = await zstdLoading;
  }
}

/**
 * Decompress synchronously when the decoder is loaded and the algorithm allows it
 * (LZ4, ZSTD); undefined means "call decompress()".
 */
export function decompressSync(kind: Compression, src: Buffer, maxBytes: number, file: string, offset: number): Buffer | undefined {
  if (kind === 'lz4' && lz4) return lz4Block(lz4, src, maxBytes, file, offset);
  if (kind === 'zstd' && zstd && frameExtent) return zstdFrame(zstd, frameExtent, src, maxBytes, file, offset);
  return undefined;
}

export async function decompress(kind: Compression, src: Buffer, maxBytes: number, file: string, offset: number): Promise<Buffer> {
  if (kind === 'xz') return xzStream(src, maxBytes, file, offset);
  await loadDecoder(kind);
  const out = decompressSync(kind, src, maxBytes, file, offset);
  if (!out) throw new JournalDecompressError(file, offset, kind, 'no decoder for this algorithm');
  return out;
}

function tooBig(file: string, offset: number, kind: string, size: number | bigint | string, maxBytes: number): JournalDecompressError {
  return new JournalDecompressError(file, offset, kind, `it declares ${size} bytes, more than the limit of ${maxBytes} (raise maxDataBytes to read it)`, 'EFBIG');
}

function lz4Block(lib: Lz4, src: Buffer, maxBytes: number, file: string, offset: number): Buffer {
  if (src.length <= 8) throw new JournalDecompressError(file, offset, 'lz4', 'shorter than its size prefix');
  const size = src.readBigUInt64LE(0);
  if (size > BigInt(maxBytes)) throw tooBig(file, offset, 'lz4', size, maxBytes);
  const n = Number(size);
  const framed = Buffer.allocUnsafe(4 + src.length - 8);
  framed.writeUInt32LE(n, 0);
  src.copy(framed, 4, 8);
  let out: Buffer;
  try {
    out = lib.uncompressSync(framed);
  } catch (err) {
    throw new JournalDecompressError(file, offset, 'lz4', `the block does not decode (${err instanceof Error ? err.message : String(err)})`);
  }
  if (out.length !== n) throw new JournalDecompressError(file, offset, 'lz4', `decoded ${out.length} bytes where the prefix says ${n}`);
  return out;
}

function zstdFrame(lib: ZstdWasm, extent: NonNullable<typeof frameExtent>, src: Buffer, maxBytes: number, file: string, offset: number): Buffer {
  const frame = extent(src, 0);
  if (!frame || frame.skippable || frame.contentSize === undefined) {
    throw new JournalDecompressError(file, offset, 'zstd', 'not a complete zstd frame with a content size');
  }
  if (frame.contentSize > maxBytes) throw tooBig(file, offset, 'zstd', frame.contentSize, maxBytes);
  const out = Buffer.allocUnsafe(frame.contentSize);
  const produced = frame.contentSize === 0 ? 0 : lib.decompress(src.subarray(0, frame.end), out);
  if (produced !== frame.contentSize) throw new JournalDecompressError(file, offset, 'zstd', 'the frame does not decode to its declared size');
  return out;
}

type XzModule = typeof import('xz-decompress');
let xzLoading: Promise<XzModule> | undefined;

async function xzStream(src: Buffer, maxBytes: number, file: string, offset: number): Promise<Buffer> {
  xzLoading ??= import('xz-decompress').then((m) => (m as unknown as { default?: XzModule }).default ?? m);
  const { XzReadableStream } = await xzLoading;
  const input = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array(src.buffer, src.byteOffset, src.length));
      controller.close();
    },
  });
  const reader = new XzReadableStream(input as never).getReader();
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooBig(file, offset, 'xz', `more than ${maxBytes}`, maxBytes);
      }
      chunks.push(Buffer.from(value)); // a copy: the decoder may reuse its output buffer
    }
  } catch (err) {
    if (err instanceof JournalDecompressError) throw err;
    throw new JournalDecompressError(file, offset, 'xz', `the stream does not decode (${err instanceof Error ? err.message : String(err)})`);
  }
  return Buffer.concat(chunks, total);
}
