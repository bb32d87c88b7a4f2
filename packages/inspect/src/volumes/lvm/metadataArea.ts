/**
 * A metadata area: a 512-byte header (its own CRC, the magic, where it is
 * and how big) followed by a ring buffer of VG text metadata. The header's
 * first raw location points to the committed copy: its offset from the
 * area's start, its length (the text and its terminating NUL) and the CRC of
 * the text. A copy that reaches the end of the area wraps: its rest starts
 * right after the header.
 *
 * Only the committed copy is read (LVM's slot 1 holds a precommitted copy
 * that is not yet in force). Only the text's own length is read, never the
 * whole area, whatever size the header claims.
 */
import type { BlockSource } from '@guestlens/block';
import { LvmChecksumError, LvmCorruptError } from './errors.ts';
import type { DiskLocn } from './label.ts';
import { COMMITTED_SLOT, FMTT_MAGIC, FMTT_VERSION, LIMITS, MDA_HEADER, MDA_HEADER_SIZE, RAW_LOCN_IGNORED, lvmCrc } from './layout.ts';

export interface MetadataText {
  /** Byte offset of the metadata area on the PV. */
  areaOffset: number;
  /** The text without its NUL, both pieces of a wrapped copy joined. */
  text: Buffer;
  /** The stored CRC of the text (equal copies on several PVs have equal CRCs). */
  checksum: number;
  /** Whether the copy wrapped past the end of the area. */
  wrapped: boolean;
}

/**
 * The committed VG text of one metadata area, or undefined when the area
 * holds none (a PV in no volume group, or an area LVM was told to ignore).
 */
export async function readMetadataText(source: BlockSource, area: DiskLocn): Promise<MetadataText | undefined> {
  const where = `metadata area header`;
  const corrupt = (reason: string) => new LvmCorruptError(source.name, where, area.offset, reason);
  if (area.offset + MDA_HEADER_SIZE > source.size) throw corrupt(`it lies past the end of the device (size ${source.size})`);
  const header = await source.read(area.offset, MDA_HEADER_SIZE);
  const computed = lvmCrc(header.subarray(MDA_HEADER.crcFrom));
  const stored = header.readUInt32LE(MDA_HEADER.checksum_xl);
  if (!header.subarray(MDA_HEADER.magic, MDA_HEADER.magic + FMTT_MAGIC.length).equals(FMTT_MAGIC)) throw corrupt('its magic number is wrong');
  if (computed !== stored) throw new LvmChecksumError(source.name, where, area.offset, stored, computed);
  const version = header.readUInt32LE(MDA_HEADER.version);
  if (version !== FMTT_VERSION) throw corrupt(`version ${version}, not ${FMTT_VERSION}`);
  const start = header.readBigUInt64LE(MDA_HEADER.start);
  if (start !== BigInt(area.offset)) throw corrupt(`it says it starts at byte ${start}`);
  const sizeField = header.readBigUInt64LE(MDA_HEADER.size);
  if (sizeField < BigInt(MDA_HEADER_SIZE)) throw corrupt(`its size ${sizeField} is smaller than the header`);
  // The ring ends where the area ends; an area larger than the device can only be damage.
  if (sizeField > BigInt(source.size - area.offset)) throw corrupt(`its size ${sizeField} runs past the end of the device (size ${source.size})`);
  const size = Number(sizeField);

  const slot = MDA_HEADER.raw_locns + COMMITTED_SLOT * MDA_HEADER.rawLocnSize;
  const offset = header.readBigUInt64LE(slot);
  const length = header.readBigUInt64LE(slot + 8);
  const checksum = header.readUInt32LE(slot + 16);
  const flags = header.readUInt32LE(slot + 20);
  if (offset === 0n && length === 0n) return undefined;
  if (flags & RAW_LOCN_IGNORED) return undefined;
  if (offset < BigInt(MDA_HEADER_SIZE) || offset >= sizeField) throw corrupt(`the metadata text is said to start at ${offset}, outside the area's ring (${MDA_HEADER_SIZE} to ${size})`);
  if (length > sizeField - BigInt(MDA_HEADER_SIZE)) throw corrupt(`the metadata text is said to be ${length} bytes, more than the area holds`);
  if (length > BigInt(LIMITS.metadataText)) throw corrupt(`the metadata text is said to be ${length} bytes, more than guestlens reads (${LIMITS.metadataText})`);
  if (length === 0n) throw corrupt('the metadata text is said to be empty');

  const first = Number(offset);
  const total = Number(length);
  const wrap = Math.max(0, first + total - size);
  const text = Buffer.alloc(total);
  await readPart(source, text, 0, area.offset + first, total - wrap);
  if (wrap > 0) await readPart(source, text, total - wrap, area.offset + MDA_HEADER_SIZE, wrap);
  const textCrc = lvmCrc(text);
  if (textCrc !== checksum) throw new LvmChecksumError(source.name, `metadata text of the area at ${area.offset}`, area.offset + first, checksum, textCrc);
  // The stored length counts the NUL that ends the text; the parser stops at the first NUL anyway.
  const nul = text.indexOf(0);
  return { areaOffset: area.offset, text: nul < 0 ? text : text.subarray(0, nul), checksum, wrapped: wrap > 0 };
}

async function readPart(source: BlockSource, into: Buffer, at: number, offset: number, length: number): Promise<void> {
  if (length === 0) return;
  const part = await source.read(offset, length);
  part.copy(into, at);
}
