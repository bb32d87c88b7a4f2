/**
 * NTFS times: signed 64-bit counts of 100 ns since 1601-01-01 UTC. Converted
 * as ntfs-3g converts them (ntfs2timespec): seconds are the quotient
 * truncated toward zero, and a negative remainder (a time before 1970) gives
 * zero nanoseconds, so what we show is what `stat` shows on its mount.
 */
import type { Timestamp } from '../filesystem.ts';

/** 100 ns intervals from 1601 to 1970. */
export const NTFS_TIME_OFFSET = 116_444_736_000_000_000n;

export function ntfsTimeToTimestamp(raw: bigint): Timestamp {
  const since1970 = raw - NTFS_TIME_OFFSET;
  // BigInt division truncates toward zero, as C's does.
  const sec = since1970 / 10_000_000n;
  let nsec = Number(since1970 - sec * 10_000_000n) * 100;
  if (nsec < 0 || nsec > 999_999_999) nsec = 0;
  return { sec: Number(sec), nsec };
}

/** A signed 64-bit NTFS time at `offset` of `buf`. */
export function readNtfsTime(buf: Buffer, offset: number): Timestamp {
  return ntfsTimeToTimestamp(buf.readBigInt64LE(offset));
}
