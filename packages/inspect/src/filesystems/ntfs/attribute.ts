/**
 * One attribute record inside an MFT record: the common header (type, name,
 * flags, instance), then either the value itself (resident) or the sizes and
 * mapping pairs of a value kept in clusters (non-resident). Checked as
 * ntfs-3g checks it (ntfs_attr_inconsistent): everything the header points at
 * lies inside the record, so later readers can slice without bounds checks.
 */
import { ATTR, ATTR_FLAGS, ATTR_TYPE, COMPRESSED_HEADER_SIZE, NON_RESIDENT_HEADER_SIZE, RESIDENT_HEADER_SIZE } from './layout.ts';

export interface AttributeRecord {
  type: number;
  /** The attribute's name ("" when unnamed), decoded from UTF-16. */
  name: string;
  /** The name's UTF-16LE bytes (exact, for comparisons). */
  nameRaw: Buffer;
  flags: number;
  instance: number;
  /** Byte offset of the record inside its MFT record. */
  at: number;
  nonResident: boolean;
  /** Resident: the value bytes (a view into the record). */
  value?: Buffer;
  // ---- non-resident ----
  lowestVcn: number;
  highestVcn: number;
  mappingPairs?: Buffer;
  compressionUnit: number;
  allocatedSize: number;
  dataSize: number;
  initializedSize: number;
  /** Clusters really allocated (compressed or sparse attributes only), in bytes. */
  compressedSize?: number;
}

export function isCompressed(a: Pick<AttributeRecord, 'flags'>): boolean {
  return (a.flags & ATTR_FLAGS.COMPRESSION_MASK) !== 0;
}
export function isSparse(a: Pick<AttributeRecord, 'flags'>): boolean {
  return (a.flags & ATTR_FLAGS.IS_SPARSE) !== 0;
}
export function isEncrypted(a: Pick<AttributeRecord, 'flags'>): boolean {
  return (a.flags & ATTR_FLAGS.IS_ENCRYPTED) !== 0;
}

/** Attribute types that are always resident (their values are read straight from the record). */
const ALWAYS_RESIDENT = new Set<number>([ATTR_TYPE.STANDARD_INFORMATION, ATTR_TYPE.FILE_NAME, ATTR_TYPE.VOLUME_NAME, ATTR_TYPE.VOLUME_INFORMATION, ATTR_TYPE.INDEX_ROOT, ATTR_TYPE.OBJECT_ID]);

/**
 * Parse the attribute at `at` of `record` (fixups applied), whose length the
 * caller already checked lies within the record. A string is the reason the
 * record is inconsistent.
 */
export function parseAttribute(record: Buffer, at: number, length: number): AttributeRecord | string {
  const type = record.readUInt32LE(at + ATTR.type);
  const nonResident = record[at + ATTR.non_resident];
  if (nonResident > 1) return `attribute 0x${type.toString(16)} at ${at}: non_resident is ${nonResident}`;
  const nameLength = record[at + ATTR.name_length];
  const nameOffset = record.readUInt16LE(at + ATTR.name_offset);
  if (nameLength && nameOffset + nameLength * 2 > length) return `attribute 0x${type.toString(16)} at ${at}: its name runs past the attribute`;
  const nameRaw = nameLength ? Buffer.from(record.subarray(at + nameOffset, at + nameOffset + nameLength * 2)) : Buffer.alloc(0);
  const base = {
    type,
    name: nameRaw.toString('utf16le'),
    nameRaw,
    flags: record.readUInt16LE(at + ATTR.flags),
    instance: record.readUInt16LE(at + ATTR.instance),
    at,
    lowestVcn: 0,
    highestVcn: -1,
    compressionUnit: 0,
  };
  if (!nonResident) {
    if (length < RESIDENT_HEADER_SIZE) return `resident attribute 0x${type.toString(16)} at ${at}: length ${length} is shorter than its header`;
    const valueLength = record.readUInt32LE(at + ATTR.value_length);
    const valueOffset = record.readUInt16LE(at + ATTR.value_offset);
    if (valueOffset + valueLength > length) return `resident attribute 0x${type.toString(16)} at ${at}: value (${valueLength} bytes at ${valueOffset}) runs past the attribute (${length} bytes)`;
    return {
      ...base,
      nonResident: false,
      value: record.subarray(at + valueOffset, at + valueOffset + valueLength),
      allocatedSize: (valueLength + 7) & ~7,
      dataSize: valueLength,
      initializedSize: valueLength,
    };
  }
  if (ALWAYS_RESIDENT.has(type)) return `attribute 0x${type.toString(16)} at ${at} must be resident but is not`;
  if (length < NON_RESIDENT_HEADER_SIZE) return `non-resident attribute 0x${type.toString(16)} at ${at}: length ${length} is shorter than its header`;
  const lowestVcn = record.readBigInt64LE(at + ATTR.lowest_vcn);
  const highestVcn = record.readBigInt64LE(at + ATTR.highest_vcn);
  const mappingPairsOffset = record.readUInt16LE(at + ATTR.mapping_pairs_offset);
  const allocatedSize = record.readBigInt64LE(at + ATTR.allocated_size);
  const dataSize = record.readBigInt64LE(at + ATTR.data_size);
  const initializedSize = record.readBigInt64LE(at + ATTR.initialized_size);
  const limit = BigInt(Number.MAX_SAFE_INTEGER);
  for (const [what, v] of [['lowest_vcn', lowestVcn], ['allocated_size', allocatedSize], ['data_size', dataSize], ['initialized_size', initializedSize]] as const) {
    if (v < 0n || v > limit) return `non-resident attribute 0x${type.toString(16)} at ${at}: ${what} ${v} is out of range`;
  }
  if (highestVcn < -1n || highestVcn > limit) return `non-resident attribute 0x${type.toString(16)} at ${at}: highest_vcn ${highestVcn} is out of range`;
  if (highestVcn < lowestVcn - 1n) return `non-resident attribute 0x${type.toString(16)} at ${at}: highest_vcn ${highestVcn} is before lowest_vcn ${lowestVcn}`;
  const flags = base.flags;
  const hasCompressedSize = (flags & (ATTR_FLAGS.COMPRESSION_MASK | ATTR_FLAGS.IS_SPARSE)) !== 0;
  if (mappingPairsOffset < NON_RESIDENT_HEADER_SIZE || mappingPairsOffset >= length) {
    return `non-resident attribute 0x${type.toString(16)} at ${at}: mapping pairs offset ${mappingPairsOffset} is outside the attribute`;
  }
  // Only the first fragment (lowest_vcn 0) is required to carry the sizes; later ones may copy them.
  let compressedSize: number | undefined;
  if (hasCompressedSize && length >= COMPRESSED_HEADER_SIZE && mappingPairsOffset >= COMPRESSED_HEADER_SIZE) {
    const cs = record.readBigInt64LE(at + ATTR.compressed_size);
    if (cs < 0n || cs > limit) return `non-resident attribute 0x${type.toString(16)} at ${at}: compressed_size ${cs} is out of range`;
    compressedSize = Number(cs);
  }
  return {
    ...base,
    nonResident: true,
    lowestVcn: Number(lowestVcn),
    highestVcn: Number(highestVcn),
    mappingPairs: record.subarray(at + mappingPairsOffset, at + length),
    compressionUnit: record[at + ATTR.compression_unit],
    allocatedSize: Number(allocatedSize),
    dataSize: Number(dataSize),
    initializedSize: Number(initializedSize),
    ...(compressedSize === undefined ? {} : { compressedSize }),
  };
}
