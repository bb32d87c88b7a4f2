/**
 * Extended attributes: entries in the inode after i_extra_isize (after a
 * 4-byte magic) and in one external block (i_file_acl: a 32-byte header,
 * then entries; checksummed with metadata_csum). An entry names its value by
 * offset (from the first entry in the inode, from the block start in the
 * block) or, with ea_inode, by the inode holding it. Names are a prefix index
 * and a suffix, as fs/ext4/xattr.h defines them.
 */
import { crc32c } from './checksum.ts';
import { ExtChecksumError } from './errors.ts';
import { GOOD_OLD_INODE_SIZE, type Inode } from './inode.ts';
import type { ExtVolume } from './volume.ts';

export const XATTR_MAGIC = 0xea020000;
const ENTRY_HEADER = 16;
const BLOCK_HEADER = 32;
/** The largest value a Linux xattr can have (XATTR_SIZE_MAX). */
const XATTR_SIZE_MAX = 65536;

const PREFIXES: Record<number, string> = {
  1: 'user.',
  2: 'system.posix_acl_access',
  3: 'system.posix_acl_default',
  4: 'trusted.',
  6: 'security.',
  7: 'system.',
  8: 'system.richacl',
};

export interface XattrEntry {
  /** The full name, prefix included ("user.comment", "security.selinux"). */
  name: string;
  nameIndex: number;
  /** The suffix as stored. */
  suffix: Buffer;
  valueSize: number;
  /** Where the value is: bytes of `area` at `valueStart`, or the EA inode `valueInum`. */
  area: Buffer;
  valueStart: number;
  valueInum: number;
}

/** Parse the entries of one area (`first` is where the first entry starts; values are relative to `base`). */
function parseEntries(vol: ExtVolume, area: Buffer, first: number, base: number, where: string, offset: number | undefined): XattrEntry[] {
  const out: XattrEntry[] = [];
  let pos = first;
  // Entries are at least 16 bytes, so this loop ends within the area.
  while (pos + 4 <= area.length && area.readUInt32LE(pos) !== 0) {
    if (pos + ENTRY_HEADER > area.length) throw vol.corrupt(where, offset, `an entry at ${pos} runs past the end`);
    const nameLen = area.readUInt8(pos);
    const nameIndex = area.readUInt8(pos + 1);
    const valueOffs = area.readUInt16LE(pos + 2);
    const valueInum = area.readUInt32LE(pos + 4);
    const valueSize = area.readUInt32LE(pos + 8);
    const entryEnd = pos + ((ENTRY_HEADER + nameLen + 3) & ~3);
    if (entryEnd > area.length) throw vol.corrupt(where, offset, `the name of the entry at ${pos} runs past the end`);
    if (valueSize > XATTR_SIZE_MAX && valueInum === 0) throw vol.corrupt(where, offset, `the entry at ${pos} has a value of ${valueSize} bytes`);
    const valueStart = base + valueOffs;
    if (valueInum === 0 && valueStart + valueSize > area.length) throw vol.corrupt(where, offset, `the value of the entry at ${pos} (${valueSize} bytes at ${valueOffs}) runs past the end`);
    const suffix = Buffer.from(area.subarray(pos + ENTRY_HEADER, pos + ENTRY_HEADER + nameLen));
    const prefix = PREFIXES[nameIndex];
    // ACL and richacl names are the prefix alone; unknown indexes keep a visible marker rather than vanish.
    const name = prefix === undefined ? `unknown.${nameIndex}.${suffix.toString('latin1')}` : prefix.endsWith('.') ? prefix + suffix.toString('latin1') : prefix;
    out.push({ name, nameIndex, suffix, valueSize, area, valueStart, valueInum });
    pos = entryEnd;
  }
  return out;
}

/** The in-inode entries (after i_extra_isize and the magic), none when the area is absent. */
export function inInodeEntries(vol: ExtVolume, inode: Inode): XattrEntry[] {
  const raw = inode.raw;
  const start = GOOD_OLD_INODE_SIZE + inode.i_extra_isize;
  if (raw.length <= GOOD_OLD_INODE_SIZE || start + 4 > raw.length || raw.readUInt32LE(start) !== XATTR_MAGIC) return [];
  return parseEntries(vol, raw, start + 4, start + 4, `in-inode extended attributes of inode ${inode.ino}`, undefined);
}

/** Every xattr entry of an inode: in-inode ones, then the external block's. */
export async function xattrEntries(vol: ExtVolume, inode: Inode): Promise<XattrEntry[]> {
  const out: XattrEntry[] = inInodeEntries(vol, inode);
  if (inode.i_file_acl !== 0) {
    const block = inode.i_file_acl;
    const where = `extended attribute block ${block} of inode ${inode.ino}`;
    if (!vol.validRange(block)) throw vol.corrupt(where, undefined, 'the block is outside the filesystem');
    const data = await vol.cache.read(block);
    if (data.readUInt32LE(0) !== XATTR_MAGIC) throw vol.corrupt(where, block * vol.blockSize, `bad magic 0x${data.readUInt32LE(0).toString(16)}`);
    if (vol.sb.metadataCsum) verifyBlockChecksum(vol, data, block, where);
    out.push(...parseEntries(vol, data, BLOCK_HEADER, 0, where, block * vol.blockSize));
  }
  return out;
}

/** ext4_xattr_block_csum: crc32c(fs seed, le64 block number, the block with h_checksum zeroed). */
function verifyBlockChecksum(vol: ExtVolume, data: Buffer, block: number, where: string): void {
  const nr = Buffer.alloc(8);
  nr.writeBigUInt64LE(BigInt(block));
  let c = crc32c(vol.sb.csumSeed, nr);
  c = crc32c(c, data, 0, 16);
  c = crc32c(c, Buffer.alloc(4));
  c = crc32c(c, data, 20, data.length);
  const stored = data.readUInt32LE(16);
  if (c !== stored) throw new ExtChecksumError(vol.image, where, block * vol.blockSize, c, stored, { retryable: vol.retryable });
}
