/**
 * The dynamic disk header ("cxsparse", 1024 bytes, big-endian) of dynamic
 * and differencing VHDs: where the block allocation table is, how big a
 * block is, and, for differencing disks, who the parent is and where to
 * find it. Checked as QEMU's vpc_open checks it.
 */
import type { BlockSource } from '@guestlens/block';
import { formatError, toSafeOffset } from '../../errors.ts';

export const DYN_HEADER_BYTES = 1024;
export const DYN = {
  cookie: 0,
  dataOffset: 8,
  tableOffset: 16,
  headerVersion: 24,
  maxTableEntries: 28,
  blockSize: 32,
  checksum: 36,
  parentUniqueId: 40,
  parentTimestamp: 56,
  parentUnicodeName: 64,
  parentLocators: 576,
} as const;
export const PARENT_LOCATOR_ENTRIES = 8;
export const PARENT_LOCATOR_BYTES = 24;
/** An unallocated block in the BAT. */
export const BAT_UNALLOCATED = 0xffffffff;

export interface ParentLocator {
  /** Platform code as four characters: W2ru, W2ku, MacX, ... */
  platform: string;
  dataSpace: number;
  dataLength: number;
  dataOffset: number;
}

export interface DynamicHeader {
  /** Where the header is in the file. */
  at: number;
  tableOffset: number;
  maxTableEntries: number;
  blockSize: number;
  /** Bytes of the sector bitmap in front of each block (whole sectors). */
  bitmapSize: number;
  parentUniqueId: Buffer;
  parentUnicodeName: string;
  parentLocators: ParentLocator[];
}

export async function readDynamicHeader(file: BlockSource, at: number, image: string): Promise<DynamicHeader> {
  if (at + DYN_HEADER_BYTES > file.size) throw formatError(image, `dynamic disk header at offset ${at} lies past the end of the file (${file.size} bytes)`, 16);
  const h = await file.read(at, DYN_HEADER_BYTES);
  if (h.toString('latin1', 0, 8) !== 'cxsparse') throw formatError(image, `no dynamic disk header ("cxsparse") at offset ${at}, where the footer says it is`, at);
  const blockSize = h.readUInt32BE(DYN.blockSize);
  if (blockSize < 512 || (blockSize & (blockSize - 1)) !== 0) throw formatError(image, `block size ${blockSize} is not a power of two of at least 512`, at + DYN.blockSize);
  const maxTableEntries = h.readUInt32BE(DYN.maxTableEntries);
  if (maxTableEntries > 0x1fffffff) throw formatError(image, `the BAT has too many entries (${maxTableEntries})`, at + DYN.maxTableEntries);
  const parentLocators: ParentLocator[] = [];
  for (let i = 0; i < PARENT_LOCATOR_ENTRIES; i++) {
    const p = DYN.parentLocators + i * PARENT_LOCATOR_BYTES;
    const code = h.readUInt32BE(p);
    if (code === 0) continue;
    parentLocators.push({
      platform: h.toString('latin1', p, p + 4),
      dataSpace: h.readUInt32BE(p + 4),
      dataLength: h.readUInt32BE(p + 8),
      dataOffset: toSafeOffset(h.readBigUInt64BE(p + 16), image, `parent locator ${i} data offset`, at + p + 16),
    });
  }
  return {
    at,
    tableOffset: toSafeOffset(h.readBigUInt64BE(DYN.tableOffset), image, 'BAT offset', at + DYN.tableOffset),
    maxTableEntries,
    blockSize,
    // QEMU's formula, integer division included (blocks under 4 KiB get no bitmap).
    bitmapSize: Math.ceil(Math.floor(blockSize / 4096) / 512) * 512,
    parentUniqueId: Buffer.from(h.subarray(DYN.parentUniqueId, DYN.parentUniqueId + 16)),
    parentUnicodeName: utf16be(h.subarray(DYN.parentUnicodeName, DYN.parentLocators)),
    parentLocators,
  };
}

/** UTF-16 big-endian up to the first NUL. */
export function utf16be(buf: Buffer): string {
  const swapped = Buffer.from(buf.subarray(0, buf.length & ~1));
  swapped.swap16();
  const text = swapped.toString('utf16le');
  const nul = text.indexOf('\0');
  return nul < 0 ? text : text.slice(0, nul);
}
