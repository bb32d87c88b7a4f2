/**
 * The CRC of every v5 metadata structure: CRC32C (seed ~0) over the whole
 * buffer with its 4-byte CRC field counted as zeros, inverted at the end and
 * stored little-endian (xfs_start_cksum_safe + xfs_end_cksum). Computed
 * without modifying the (shared, cached) buffer.
 */
import { crc32c } from '../crc32c.ts';

const ZERO4 = Buffer.alloc(4);

/** The CRC a buffer of `length` bytes from `start` should store at `start + crcOffset`. */
export function xfsChecksum(buf: Buffer, crcOffset: number, start = 0, length = buf.length - start): number {
  let c = crc32c(0xffffffff, buf, start, start + crcOffset);
  c = crc32c(c, ZERO4);
  c = crc32c(c, buf, start + crcOffset + 4, start + length);
  return ~c >>> 0;
}

/** The stored and computed CRC of a structure; equal when it is intact. */
export function checkXfsChecksum(buf: Buffer, crcOffset: number, start = 0, length = buf.length - start): { stored: number; computed: number } {
  return { stored: buf.readUInt32LE(start + crcOffset), computed: xfsChecksum(buf, crcOffset, start, length) };
}
