/**
 * An MFT record (a FILE record): its header and its attribute records. The
 * caller undid the fixups. Checked as ntfs-3g checks a record before using it
 * (ntfs_mft_record_check): the FILE magic, the allocated size equal to the
 * volume's record size, the attributes aligned, in ascending type order,
 * each inside the bytes in use, and an end marker after the last.
 */
import { parseAttribute, type AttributeRecord } from './attribute.ts';
import { ATTR, ATTR_TYPE, MAGIC_BAAD, MAGIC_FILE, MFT, MFT_RECORD_FLAGS, RESIDENT_HEADER_SIZE, mftRefRecord, mftRefSequence } from './layout.ts';

export interface MftRecord {
  number: number;
  sequenceNumber: number;
  linkCount: number;
  flags: number;
  inUse: boolean;
  isDirectory: boolean;
  /** For an extension record: the base record's number (0 for a base record) and sequence. */
  baseRecord: number;
  baseSequence: number;
  lsn: bigint;
  attributes: AttributeRecord[];
  /** The fixed-up record (attribute values are views into it). */
  bytes: Buffer;
}

/** Parse a fixed-up record; a string is why it is not a valid record. */
export function parseMftRecord(rec: Buffer, number: number, recordSize: number): MftRecord | string {
  const magic = rec.toString('latin1', 0, 4);
  if (magic === MAGIC_BAAD) return 'marked BAAD (an incomplete multi-sector transfer was detected by Windows)';
  if (magic !== MAGIC_FILE) return `no FILE magic (found ${JSON.stringify(magic)})`;
  const bytesAllocated = rec.readUInt32LE(MFT.bytes_allocated);
  if (bytesAllocated !== recordSize) return `allocated size ${bytesAllocated} is not the volume's record size ${recordSize}`;
  const bytesInUse = rec.readUInt32LE(MFT.bytes_in_use);
  if (bytesInUse > recordSize) return `in-use size ${bytesInUse} is over the record size ${recordSize}`;
  const attrsOffset = rec.readUInt16LE(MFT.attrs_offset);
  if (attrsOffset & 7) return `attributes badly aligned (offset ${attrsOffset})`;
  if (attrsOffset < MFT.next_attr_instance + 2 || attrsOffset > recordSize) return `attribute offset ${attrsOffset} is outside the record`;
  const flags = rec.readUInt16LE(MFT.flags);
  const baseRef = rec.readBigUInt64LE(MFT.base_mft_record);

  const attributes: AttributeRecord[] = [];
  let offset = attrsOffset;
  let space = bytesInUse - attrsOffset;
  let previousType = ATTR_TYPE.STANDARD_INFORMATION as number;
  // Every attribute is at least RESIDENT_HEADER_SIZE bytes, so this ends within recordSize / 24 steps.
  while (space >= RESIDENT_HEADER_SIZE) {
    const type = rec.readUInt32LE(offset + ATTR.type);
    if (type === ATTR_TYPE.END) break;
    if (type < previousType) return `attribute 0x${type.toString(16)} at ${offset} is out of order (after 0x${previousType.toString(16)})`;
    const length = rec.readUInt32LE(offset + ATTR.length);
    if (length > space || length & 7 || length < RESIDENT_HEADER_SIZE) return `attribute 0x${type.toString(16)} at ${offset} has a bad length ${length}`;
    const a = parseAttribute(rec, offset, length);
    if (typeof a === 'string') return a;
    attributes.push(a);
    previousType = type;
    offset += length;
    space -= length;
  }
  if (space < 4 || rec.readUInt32LE(offset) !== ATTR_TYPE.END) return `no end marker after the last attribute (at ${offset})`;
  return {
    number,
    sequenceNumber: rec.readUInt16LE(MFT.sequence_number),
    linkCount: rec.readUInt16LE(MFT.link_count),
    flags,
    inUse: (flags & MFT_RECORD_FLAGS.IN_USE) !== 0,
    isDirectory: (flags & MFT_RECORD_FLAGS.IS_DIRECTORY) !== 0,
    baseRecord: mftRefRecord(baseRef),
    baseSequence: mftRefSequence(baseRef),
    lsn: rec.readBigUInt64LE(MFT.lsn),
    attributes,
    bytes: rec,
  };
}
