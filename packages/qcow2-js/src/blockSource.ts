/**
 * The one interface every layer stacks on: something with a size that reads
 * bytes at an offset. Raw files, qcow2 images, partitions, logical volumes and
 * replayed-journal views all implement it, and each takes the one below it.
 *
 * Offsets and sizes are plain numbers: every image we accept is smaller than
 * 2^53 bytes (8 PiB). Formats store 64-bit fields; parse those as bigint and
 * convert with `toSafeNumber` at the boundary, so an absurd value becomes an
 * error instead of silently losing precision.
 */

/** What a range of a block source holds, so scans can skip holes. */
export type ExtentKind = 'data' | 'zero' | 'compressed';

export interface Extent {
  offset: number;
  length: number;
  kind: ExtentKind;
}

export interface BlockSource {
  /** Guest-visible size in bytes. */
  readonly size: number;
  /** How error messages name this source: the image path, plus the layer ("disk.qcow2 partition 2"). */
  readonly name: string;
  /**
   * Exactly `length` bytes at `offset`. Reading past `size` is an error
   * (BlockRangeError), never a short read.
   */
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Optional: like `read`, but into `target` at `targetOffset`, so a layer
   * above can fill one buffer without copying. Use `readInto()` below to
   * call it on any source.
   */
  readInto?(target: Buffer, targetOffset: number, offset: number, length: number): Promise<void>;
  /**
   * The extent that starts at `offset`: the longest run (at most `length`
   * bytes) that has one kind. Sources without a map say 'data'.
   */
  extent(offset: number, length: number): Promise<Extent>;
  /** Drop every cached piece of metadata (live images change under us). */
  refresh(): Promise<void>;
  /** Release file descriptors. Further reads fail. */
  close(): Promise<void>;
}

/** A read outside [0, size) of a block source: always a caller bug or a corrupt structure pointing outside its container. */
export class BlockRangeError extends RangeError {
  readonly userFacing = true;
  constructor(
    readonly source: string,
    readonly offset: number,
    readonly length: number,
    readonly size: number,
  ) {
    super(`${source}: read of ${length} bytes at offset ${offset} runs past the end (size ${size})`);
    this.name = 'BlockRangeError';
  }
}

export function checkRange(source: BlockSource, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > source.size) {
    throw new BlockRangeError(source.name, offset, length, source.size);
  }
}

/** A 64-bit on-disk value as a JS number, or a clear error when it cannot be one. */
export function toSafeNumber(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < 0n) {
    throw new RangeError(`${what} is ${value}, beyond what guestlens supports (2^53 bytes)`);
  }
  return Number(value);
}

/** Read `length` bytes at `offset` of `source` into `target`, without a copy when the source can. */
export async function readInto(source: BlockSource, target: Buffer, targetOffset: number, offset: number, length: number): Promise<void> {
  if (length === 0) return;
  if (source.readInto) {
    await source.readInto(target, targetOffset, offset, length);
    return;
  }
  const data = await source.read(offset, length);
  data.copy(target, targetOffset);
}
