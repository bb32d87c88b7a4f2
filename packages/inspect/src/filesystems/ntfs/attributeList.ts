/**
 * $ATTRIBUTE_LIST: when a file's attributes do not fit in its base MFT record
 * they spill into extension records, and this list (in the base record) says
 * where each attribute, or each fragment of a long runlist, lives: type,
 * name, first VCN, the MFT reference of the record holding it and its
 * instance number there.
 */
import { mftRefRecord, mftRefSequence } from './layout.ts';

export interface AttributeListEntry {
  type: number;
  name: string;
  nameRaw: Buffer;
  lowestVcn: number;
  recordNumber: number;
  sequenceNumber: number;
  instance: number;
}

const ENTRY_MIN = 0x1a;

/** Parse an attribute list value; a string is why it is corrupt. */
export function parseAttributeList(value: Buffer): AttributeListEntry[] | string {
  const out: AttributeListEntry[] = [];
  let pos = 0;
  // Every entry is at least ENTRY_MIN bytes long, so the loop ends within value.length / 26 steps.
  while (pos + ENTRY_MIN <= value.length) {
    const type = value.readUInt32LE(pos);
    const length = value.readUInt16LE(pos + 4);
    if (length < ENTRY_MIN || pos + length > value.length) return `entry at byte ${pos}: bad length ${length}`;
    const nameLength = value[pos + 6];
    const nameOffset = value[pos + 7];
    if (nameLength && nameOffset + nameLength * 2 > length) return `entry at byte ${pos}: name runs past the entry`;
    const lowestVcn = value.readBigInt64LE(pos + 8);
    if (lowestVcn < 0n || lowestVcn > BigInt(Number.MAX_SAFE_INTEGER)) return `entry at byte ${pos}: lowest VCN ${lowestVcn} is out of range`;
    const ref = value.readBigUInt64LE(pos + 0x10);
    const nameRaw = Buffer.from(value.subarray(pos + nameOffset, pos + nameOffset + nameLength * 2));
    out.push({
      type,
      name: nameRaw.toString('utf16le'),
      nameRaw,
      lowestVcn: Number(lowestVcn),
      recordNumber: mftRefRecord(ref),
      sequenceNumber: mftRefSequence(ref),
      instance: value.readUInt16LE(pos + 0x18),
    });
    pos += length;
  }
  return out;
}
