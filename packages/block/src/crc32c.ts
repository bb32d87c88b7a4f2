/**
 * CRC32C (Castagnoli), the checksum of ext4, jbd2, XFS v5, btrfs and vhdx
 * metadata. A "raw" CRC as the kernel's crc32c() computes it: the caller
 * passes the running value in and gets it back with no final inversion, so
 * sums can be chained over pieces (seed, inode number, generation, then the
 * structure) exactly as the kernel chains them. Slicing-by-8 tables.
 */

/** A reflected CRC table (slicing-by-8) for `poly`; 16-bit CRCs keep the low half. */
export function makeCrcTable(poly: number, bits: 16 | 32): Uint32Array {
  const table = new Uint32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    table[n] = bits === 16 ? c & 0xffff : c >>> 0;
  }
  // Slicing-by-8 tables: table[k*256 + n] is the CRC of byte n followed by k zero bytes.
  for (let n = 0; n < 256; n++) {
    let c = table[n];
    for (let k = 1; k < 8; k++) {
      c = table[c & 0xff] ^ (c >>> 8);
      table[k * 256 + n] = c >>> 0;
    }
  }
  return table;
}

const crc32cTable = makeCrcTable(0x82f63b78, 32);

/** CRC32C (Castagnoli), reflected, no final xor: the kernel's crc32c(crc, p, len). Start with 0xffffffff. */
export function crc32c(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  const t = crc32cTable;
  let c = crc >>> 0;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    c ^= data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    c =
      t[7 * 256 + (c & 0xff)] ^
      t[6 * 256 + ((c >>> 8) & 0xff)] ^
      t[5 * 256 + ((c >>> 16) & 0xff)] ^
      t[4 * 256 + (c >>> 24)] ^
      t[3 * 256 + data[i + 4]] ^
      t[2 * 256 + data[i + 5]] ^
      t[1 * 256 + data[i + 6]] ^
      t[data[i + 7]];
  }
  for (; i < end; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

/** crc32c over a little-endian 32-bit value (inode numbers, group numbers, generations). */
export function crc32cLe32(crc: number, value: number): number {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(value >>> 0);
  return crc32c(crc, b);
}

/** crc32c over a big-endian 32-bit value (jbd2 sequence numbers). */
export function crc32cBe32(crc: number, value: number): number {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value >>> 0);
  return crc32c(crc, b);
}

/** The conventional CRC-32C of `data` (initial ~0, final inversion): what vhdx, iSCSI and most specifications mean by "CRC-32C". */
export function crc32cStandard(data: Uint8Array): number {
  return ~crc32c(0xffffffff, data) >>> 0;
}
