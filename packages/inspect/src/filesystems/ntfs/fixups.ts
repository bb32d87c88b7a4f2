/**
 * Multi-sector transfer protection (the update sequence array), NTFS's way to
 * tell a torn write: the last two bytes of every 512-byte stride of a record
 * (MFT record, index block, restart page) hold the update sequence number,
 * and the bytes they replaced are kept in the array. Reading a record means
 * checking every stride carries the number and putting the bytes back.
 */
import { NTFS_BLOCK_SIZE, RECORD } from './layout.ts';

export type FixupResult =
  | { ok: true; record: Buffer }
  /** The header cannot describe this record (bad usa_ofs/usa_count). */
  | { ok: false; kind: 'header'; reason: string }
  /** Stride `stride` does not end with the update sequence number: an incomplete multi-sector transfer. */
  | { ok: false; kind: 'mismatch'; stride: number; expected: number; found: number };

/**
 * Verify and undo the fixups of `raw` (not modified); the result is a copy.
 * The header rules are ntfs-3g's: the record is a whole number of strides,
 * the array is aligned, holds one entry per stride plus the number itself,
 * and ends before the last two bytes of the first stride.
 */
export function applyFixups(raw: Buffer): FixupResult {
  const size = raw.length;
  if (size < NTFS_BLOCK_SIZE || size % NTFS_BLOCK_SIZE !== 0) return { ok: false, kind: 'header', reason: `record size ${size} is not a multiple of ${NTFS_BLOCK_SIZE}` };
  const usaOfs = raw.readUInt16LE(RECORD.usa_ofs);
  const usaCount = raw.readUInt16LE(RECORD.usa_count);
  if (usaOfs % 2 !== 0 || usaCount !== 1 + size / NTFS_BLOCK_SIZE || usaOfs + usaCount * 2 > NTFS_BLOCK_SIZE - 2) {
    return { ok: false, kind: 'header', reason: `update sequence array at ${usaOfs} with ${usaCount} entries does not fit a ${size}-byte record` };
  }
  const usn = raw.readUInt16LE(usaOfs);
  for (let i = 1; i < usaCount; i++) {
    const at = i * NTFS_BLOCK_SIZE - 2;
    const found = raw.readUInt16LE(at);
    if (found !== usn) return { ok: false, kind: 'mismatch', stride: i - 1, expected: usn, found };
  }
  const out = Buffer.from(raw);
  for (let i = 1; i < usaCount; i++) out.writeUInt16LE(raw.readUInt16LE(usaOfs + i * 2), i * NTFS_BLOCK_SIZE - 2);
  return { ok: true, record: out };
}
