/**
 * The two VHDX headers: each 4 KiB, CRC-32C checked; the current one is the
 * valid one with the larger sequence number (QEMU's vhdx_parse_header: two
 * valid headers with equal sequence numbers are accepted only when they are
 * identical, as Disk2VHD writes them).
 */
import { crc32c, type BlockSource } from '@guestlens/block';
import { formatError, unsupportedError } from '../../errors.ts';
import { isNullGuid } from '../common/guid.ts';
import { HEADER, HEADER1_OFFSET, HEADER2_OFFSET, HEADER_BYTES, HEADER_SIGNATURE, MiB } from './layout.ts';

export interface VhdxHeader {
  /** Which header (1 or 2) and where it is. */
  index: 1 | 2;
  at: number;
  sequenceNumber: bigint;
  fileWriteGuid: Buffer;
  dataWriteGuid: Buffer;
  logGuid: Buffer;
  logVersion: number;
  logLength: number;
  logOffset: number;
}

/** CRC-32C of `buf` with its 4-byte checksum field at `at` taken as zero: what VHDX stores there. */
export function vhdxChecksum(buf: Buffer, at = 4): number {
  let c = crc32c(0xffffffff, buf, 0, at);
  c = crc32c(c, ZERO4);
  c = crc32c(c, buf, at + 4);
  return ~c >>> 0;
}
const ZERO4 = Buffer.alloc(4);

function parse(buf: Buffer, index: 1 | 2, at: number): VhdxHeader | undefined {
  if (buf.length < HEADER_BYTES || buf.toString('latin1', 0, 4) !== HEADER_SIGNATURE) return undefined;
  if (vhdxChecksum(buf) !== buf.readUInt32LE(HEADER.checksum)) return undefined;
  if (buf.readUInt16LE(HEADER.version) !== 1) return undefined;
  const logOffset = buf.readBigUInt64LE(HEADER.logOffset);
  return {
    index,
    at,
    sequenceNumber: buf.readBigUInt64LE(HEADER.sequenceNumber),
    fileWriteGuid: Buffer.from(buf.subarray(HEADER.fileWriteGuid, HEADER.fileWriteGuid + 16)),
    dataWriteGuid: Buffer.from(buf.subarray(HEADER.dataWriteGuid, HEADER.dataWriteGuid + 16)),
    logGuid: Buffer.from(buf.subarray(HEADER.logGuid, HEADER.logGuid + 16)),
    logVersion: buf.readUInt16LE(HEADER.logVersion),
    logLength: buf.readUInt32LE(HEADER.logLength),
    logOffset: logOffset > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(logOffset),
  };
}

/** The current header, checked as QEMU checks it (and its log fields as vhdx_parse_log does). */
export async function readCurrentHeader(file: BlockSource, image: string): Promise<VhdxHeader> {
  const read = async (at: number) => (file.size >= at + HEADER_BYTES ? file.read(at, HEADER_BYTES) : Buffer.alloc(0));
  const b1 = await read(HEADER1_OFFSET);
  const b2 = await read(HEADER2_OFFSET);
  const h1 = parse(b1, 1, HEADER1_OFFSET);
  const h2 = parse(b2, 2, HEADER2_OFFSET);
  let h: VhdxHeader;
  if (h1 && h2) {
    if (h1.sequenceNumber > h2.sequenceNumber) h = h1;
    else if (h2.sequenceNumber > h1.sequenceNumber) h = h2;
    else if (b1.equals(b2)) h = h1;
    else throw formatError(image, `both VHDX headers are valid with the same sequence number ${h1.sequenceNumber} but differ`, HEADER2_OFFSET);
  } else if (h1 || h2) {
    h = (h1 ?? h2) as VhdxHeader;
  } else {
    throw formatError(image, 'no valid VHDX header: neither the one at 64 KiB nor the one at 128 KiB has the "head" signature, version 1 and a matching CRC-32C', HEADER1_OFFSET);
  }
  if (h.logOffset < MiB || h.logOffset % MiB) throw formatError(image, `log offset ${h.logOffset} is not a multiple of 1 MiB past the header section`, h.at + HEADER.logOffset);
  if (h.logVersion !== 0) throw unsupportedError(image, `log version ${h.logVersion} is not supported (only 0)`, h.at + HEADER.logVersion);
  if (!isNullGuid(h.logGuid) && h.logLength % MiB) throw formatError(image, `log length ${h.logLength} is not a multiple of 1 MiB`, h.at + HEADER.logLength);
  return h;
}
