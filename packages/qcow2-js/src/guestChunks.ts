/**
 * The guest bytes of a range of a block source as a sequence of chunks, for
 * streaming a whole disk with flat memory: a few chunks are read ahead into a
 * fixed set of buffers (so reading overlaps the consumer's writing and no
 * garbage piles up between collections), and ranges the extent map says are
 * zeros are never read nor decompressed.
 */
import { readInto, type BlockSource } from '@guestlens/block';
import { sharedBuffer } from './bufferPool.ts';

export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;
export const DEFAULT_READ_AHEAD = 2;

export interface GuestChunkOptions {
  offset?: number;
  length?: number;
  chunkBytes?: number;
  /** Chunks being read at once, the one being consumed not counted. */
  readAhead?: number;
}

let zeroChunk: Buffer | undefined;

/**
 * Yields the bytes of [offset, offset + length) in order.
 *
 * A yielded chunk is valid until the consumer asks for the next one: its
 * buffer is then reused. Copy it to keep it; a writer must have handed it to
 * the OS (the write callback) before continuing. Chunks of zeros are a shared
 * buffer: never modify a chunk.
 */
export async function* guestChunks(source: BlockSource, options: GuestChunkOptions = {}): AsyncGenerator<Buffer> {
  const offset = options.offset ?? 0;
  const end = offset + (options.length ?? source.size - offset);
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const readAhead = Math.max(1, options.readAhead ?? DEFAULT_READ_AHEAD);
  if (!zeroChunk || zeroChunk.length < chunkBytes) zeroChunk = Buffer.alloc(chunkBytes);
  const zeros = zeroChunk;
  const free: Buffer[] = [];

  const takeBuffer = (): Buffer => {
    const buffer = free.pop();
    // Shared memory: zstd worker threads decompress straight into it.
    return buffer ?? sharedBuffer(chunkBytes);
  };

  interface Pending {
    chunk: Promise<Buffer>;
    buffer?: Buffer;
  }

  const readChunk = (at: number, length: number): Pending => {
    const pending: Pending = { chunk: Promise.resolve(zeros) };
    pending.chunk = (async () => {
      const extent = await source.extent(at, length);
      if (extent.kind === 'zero' && extent.length === length) return zeros.subarray(0, length);
      const buffer = takeBuffer();
      pending.buffer = buffer;
      await readInto(source, buffer, 0, at, length);
      return buffer.subarray(0, length);
    })();
    // A consumer that stops early must not leave a rejection unhandled.
    pending.chunk.catch(() => undefined);
    return pending;
  };

  const queue: Pending[] = [];
  let next = offset;
  const fill = () => {
    // At most readAhead reads plus the chunk the consumer holds: a bounded set of buffers.
    while (queue.length < readAhead && next < end) {
      const length = Math.min(chunkBytes, end - next);
      queue.push(readChunk(next, length));
      next += length;
    }
  };
  let held: Buffer | undefined;
  try {
    fill();
    while (queue.length) {
      const pending = queue.shift() as Pending;
      const chunk = await pending.chunk;
      if (held) free.push(held);
      held = pending.buffer;
      fill();
      yield chunk;
    }
  } finally {
    // Let reads in flight finish before the caller closes the source.
    await Promise.allSettled(queue.map((p) => p.chunk));
  }
}
