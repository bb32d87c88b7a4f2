/**
 * The VHD hard disk footer (512 bytes, big-endian): at the end of every VHD
 * and, for dynamic and differencing disks, copied to offset 0. One table of
 * offsets, read by the probe and the reader; checked as QEMU's vpc_open
 * checks it (the checksum included).
 */
import type { BlockSource } from '@guestlens/block';
import { corruptError, formatError } from '../../errors.ts';

export const VHD_COOKIE = 'conectix';
export const VHD_FOOTER_BYTES = 512;
export const VHD_FIXED = 2;
export const VHD_DYNAMIC = 3;
export const VHD_DIFFERENCING = 4;
/** 65535 cylinders x 16 heads x 255 sectors: a geometry that says "the size is in current_size". */
export const VHD_MAX_GEOMETRY = 65535 * 16 * 255;
/** QEMU's limit: 2040 GiB. */
export const VHD_MAX_SECTORS = 0xff000000;

export const FOOTER = {
  cookie: 0,
  features: 8,
  formatVersion: 12,
  dataOffset: 16,
  timestamp: 24,
  creatorApp: 28,
  creatorVersion: 32,
  creatorOs: 36,
  originalSize: 40,
  currentSize: 48,
  cylinders: 56,
  heads: 58,
  sectorsPerTrack: 59,
  diskType: 60,
  checksum: 64,
  uniqueId: 68,
  savedState: 84,
} as const;

export interface VhdFooter {
  /** Where the footer was found: 0 (the copy of a dynamic or differencing disk) or the end (fixed). */
  at: number;
  diskType: number;
  dataOffset: bigint;
  creatorApp: string;
  creatorVersion: number;
  currentSize: bigint;
  cylinders: number;
  heads: number;
  sectorsPerTrack: number;
  uniqueId: Buffer;
  savedState: boolean;
}

export function startsWithCookie(buf: Buffer, at = 0): boolean {
  return buf.length >= at + 8 && buf.toString('latin1', at, at + 8) === VHD_COOKIE;
}

/** The sum of every byte but the checksum field, complemented. */
export function footerChecksum(footer: Buffer): number {
  let sum = 0;
  for (let i = 0; i < VHD_FOOTER_BYTES; i++) if (i < FOOTER.checksum || i >= FOOTER.checksum + 4) sum += footer[i];
  return ~sum >>> 0;
}

/** The footer QEMU uses: the copy at offset 0 if there is one, else the last 512 bytes (a fixed disk). */
export async function readFooter(file: BlockSource, image: string): Promise<VhdFooter> {
  if (file.size < VHD_FOOTER_BYTES) throw formatError(image, `file is ${file.size} bytes, too short for a VHD footer (${VHD_FOOTER_BYTES})`, 0);
  let at = 0;
  let buf = await file.read(0, VHD_FOOTER_BYTES);
  if (!startsWithCookie(buf)) {
    at = file.size - VHD_FOOTER_BYTES;
    buf = await file.read(at, VHD_FOOTER_BYTES);
    if (!startsWithCookie(buf)) throw formatError(image, 'not a VHD image: no "conectix" footer at its start or its end', at);
  }
  const stored = buf.readUInt32BE(FOOTER.checksum);
  const computed = footerChecksum(buf);
  if (stored !== computed) throw corruptError(image, `VHD footer checksum is 0x${stored.toString(16)}, its bytes sum to 0x${computed.toString(16)}`, at + FOOTER.checksum);
  return {
    at,
    diskType: buf.readUInt32BE(FOOTER.diskType),
    dataOffset: buf.readBigUInt64BE(FOOTER.dataOffset),
    creatorApp: buf.toString('latin1', FOOTER.creatorApp, FOOTER.creatorApp + 4),
    creatorVersion: buf.readUInt32BE(FOOTER.creatorVersion),
    currentSize: buf.readBigUInt64BE(FOOTER.currentSize),
    cylinders: buf.readUInt16BE(FOOTER.cylinders),
    heads: buf[FOOTER.heads],
    sectorsPerTrack: buf[FOOTER.sectorsPerTrack],
    uniqueId: Buffer.from(buf.subarray(FOOTER.uniqueId, FOOTER.uniqueId + 16)),
    savedState: buf[FOOTER.savedState] !== 0,
  };
}
