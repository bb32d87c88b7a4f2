/**
 * FILETIME: 100-nanosecond intervals since 1601-01-01 UTC, the time stamps of
 * keys and of the base block. Shown as { sec, nsec } since the Unix epoch,
 * the shape guestlens uses for every file time, so no precision is lost.
 */

/** Seconds between 1601-01-01 and 1970-01-01. */
const EPOCH_DIFFERENCE_SECONDS = 11644473600n;

export interface Timestamp {
  /** Seconds since the Unix epoch (negative before 1970). */
  sec: number;
  nsec: number;
}

export function readFiletime(buf: Buffer, offset: number): bigint {
  return buf.readBigUInt64LE(offset);
}

export function filetimeToTimestamp(filetime: bigint): Timestamp {
  const sec = filetime / 10_000_000n - EPOCH_DIFFERENCE_SECONDS;
  const nsec = Number(filetime % 10_000_000n) * 100;
  return { sec: Number(sec), nsec };
}

/** ISO 8601 in UTC to the second, as hivexml prints key times ("2014-01-10T21:06:02Z"); undefined when out of Date's range. */
export function filetimeToIso(filetime: bigint): string | undefined {
  const { sec } = filetimeToTimestamp(filetime);
  const date = new Date(sec * 1000);
  if (Number.isNaN(date.getTime())) return undefined;
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
