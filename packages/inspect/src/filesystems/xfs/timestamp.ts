/**
 * Inode timestamps. Legacy ones are two signed 32-bit words (seconds since
 * the Unix epoch, nanoseconds); with the bigtime feature an inode flagged
 * BIGTIME stores one unsigned 64-bit count of nanoseconds since the legacy
 * minimum (1901-12-13T20:45:52Z), which reaches the year 2486.
 */
import type { Timestamp } from '../filesystem.ts';
import { BIGTIME_EPOCH_OFFSET } from './layout.ts';

const NSEC_PER_SEC = 1_000_000_000n;

export function decodeTimestamp(raw: Buffer, offset: number, bigtime: boolean): Timestamp {
  if (bigtime) {
    const ns = raw.readBigUInt64BE(offset);
    return { sec: Number(ns / NSEC_PER_SEC) - BIGTIME_EPOCH_OFFSET, nsec: Number(ns % NSEC_PER_SEC) };
  }
  // The kernel takes both halves as signed ints as they are; a nanosecond count out of range is shown as stored.
  return { sec: raw.readInt32BE(offset), nsec: raw.readInt32BE(offset + 4) };
}
