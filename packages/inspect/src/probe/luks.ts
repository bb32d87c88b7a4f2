/**
 * LUKS encrypted volumes, named as libblkid names them: crypto_LUKS, usage
 * crypto. The primary header ("LUKS\xba\xbe") is at byte 0; a LUKS2 volume
 * whose primary header is damaged is still recognised by its secondary
 * header ("SKUL\xba\xbe") at one of the offsets LUKS2 allows, each header
 * recording its own offset. VERSION is the header version, UUID the UUID
 * string stored in the header, LABEL (LUKS2 only) the label field. guestlens
 * does not decrypt volumes; this names what the device holds.
 */
import type { ProbeReader } from './reader.ts';
import type { ProbeResult } from './result.ts';
import { labelFrom } from './text.ts';

const PRIMARY_MAGIC = Buffer.from('LUKS\xba\xbe', 'latin1');
const SECONDARY_MAGIC = Buffer.from('SKUL\xba\xbe', 'latin1');
/** Where a LUKS2 secondary header may be. */
const SECONDARY_OFFSETS = [0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000];

/** Header fields (big-endian): magic, version, then per version the UUID string and (LUKS2) label and own offset. */
const HDR = {
  magic: 0,
  version: 6,
  luks2Label: 24,
  uuid: 168,
  luks2HdrOffset: 256,
  size: 512,
} as const;
const UUID_LENGTH = 40;
const LABEL_LENGTH = 48;

function valid(hdr: Buffer, magic: Buffer, offset: number): boolean {
  if (!hdr.subarray(0, 6).equals(magic)) return false;
  // A LUKS2 header must be where it says it is.
  return hdr.readUInt16BE(HDR.version) !== 2 || hdr.readBigUInt64BE(HDR.luks2HdrOffset) === BigInt(offset);
}

function attributes(hdr: Buffer): ProbeResult {
  const version = hdr.readUInt16BE(HDR.version);
  const result: ProbeResult = { type: 'crypto_LUKS', usage: 'crypto', version: String(version) };
  if (version === 1 || version === 2) {
    const raw = hdr.subarray(HDR.uuid, HDR.uuid + UUID_LENGTH);
    const end = raw.indexOf(0);
    const uuid = raw.toString('latin1', 0, end < 0 ? UUID_LENGTH : end);
    if (uuid) result.uuid = uuid;
  }
  if (version === 2) result.label = labelFrom(hdr.subarray(HDR.luks2Label, HDR.luks2Label + LABEL_LENGTH));
  return result;
}

export async function probeLuks(r: ProbeReader): Promise<ProbeResult | undefined> {
  const primary = await r.read(0, HDR.size);
  if (!primary) return undefined;
  if (valid(primary, PRIMARY_MAGIC, 0)) return attributes(primary);
  for (const offset of SECONDARY_OFFSETS) {
    const hdr = await r.read(offset, HDR.size);
    if (!hdr) return undefined;
    if (valid(hdr, SECONDARY_MAGIC, offset)) return attributes(hdr);
  }
  return undefined;
}
