/** Little-endian field reads at the sizes the format uses. */

/**
 * An le64 as a JS number. Offsets, sizes and counts beyond 2^53 cannot be
 * real in a file we can read; they become Infinity, which fails every bounds
 * check after it, so a hostile value can never wrap around into range.
 */
export function u64(buf: Buffer, at: number): number {
  const hi = buf.readUInt32LE(at + 4);
  const lo = buf.readUInt32LE(at);
  return hi > 0x1fffff ? Infinity : hi * 0x1_0000_0000 + lo;
}

/** An le64 exactly (timestamps, seqnums, hashes). */
export function u64n(buf: Buffer, at: number): bigint {
  return buf.readBigUInt64LE(at);
}

export function u32(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at);
}

/** A 128-bit id as systemd prints it: 32 lowercase hex digits. */
export function id128(buf: Buffer, at: number): string {
  return buf.toString('hex', at, at + 16);
}

export function isAligned64(n: number): boolean {
  return n % 8 === 0;
}
