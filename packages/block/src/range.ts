/**
 * Range checks at the block layer, and the conversions every parser needs at
 * its boundary: 64-bit on-disk values become JS numbers only when they fit,
 * and a single read never allocates more than the caller's limit.
 */
import { brand, errorJson, type GuestlensErrorJson, type GuestlensErrorShape } from './errors.ts';
import type { BlockSource } from './blockSource.ts';

/**
 * A read outside [0, size) of a block source: always a caller bug or a
 * corrupt structure pointing outside its container. A RangeError (callers
 * test for that), branded as a GuestlensError.
 */
export class BlockRangeError extends RangeError implements GuestlensErrorShape {
  readonly code = 'ERANGE';
  readonly userFacing = true;
  readonly retryable = false;
  constructor(
    readonly source: string,
    readonly offset: number,
    readonly length: number,
    readonly size: number,
  ) {
    super(`${source}: read of ${length} bytes at offset ${offset} runs past the end (size ${size})`);
    this.name = 'BlockRangeError';
    brand(this);
  }

  get data(): Record<string, unknown> {
    return { source: this.source, offset: this.offset, length: this.length, size: this.size };
  }

  toJSON(): GuestlensErrorJson {
    return errorJson(this);
  }
}

export function checkRange(source: Pick<BlockSource, 'name' | 'size'>, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > source.size) {
    throw new BlockRangeError(source.name, offset, length, source.size);
  }
}

/** A value beyond 2^53 that guestlens cannot represent exactly (an absurd size, offset or inode number). */
export class UnsafeNumberError extends RangeError implements GuestlensErrorShape {
  readonly code = 'EOVERFLOW';
  readonly userFacing = true;
  readonly retryable = false;
  constructor(
    readonly what: string,
    readonly value: bigint,
  ) {
    super(`${what} is ${value}, beyond what guestlens supports (2^53)`);
    this.name = 'UnsafeNumberError';
    brand(this);
  }

  get data(): Record<string, unknown> {
    return { what: this.what, value: this.value.toString() };
  }

  toJSON(): GuestlensErrorJson {
    return errorJson(this);
  }
}

/** A 64-bit on-disk value as a JS number, or a clear error when it cannot be one. */
export function toSafeNumber(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < 0n) throw new UnsafeNumberError(what, value);
  return Number(value);
}

/** Largest single read() any reader hands out by default: its buffer is allocated up front. */
export const DEFAULT_MAX_READ_BYTES = 256 * 1024 * 1024;
