/**
 * Inline data (INCOMPAT_INLINE_DATA): small files and directories live in the
 * inode itself, the first 60 bytes in i_block and the rest in the value of the
 * in-inode extended attribute "system.data" (name index 7, name "data").
 */
import { GOOD_OLD_INODE_SIZE, N_BLOCKS_BYTES, type Inode } from './inode.ts';
import type { ExtVolume } from './volume.ts';

const XATTR_MAGIC = 0xea020000;
const XATTR_INDEX_SYSTEM = 7;
const ENTRY_HEADER = 16;

/** The value of system.data from the in-inode xattr area (empty when absent). */
export function inlineXattrValue(vol: ExtVolume, inode: Inode): Buffer {
  const raw = inode.raw;
  const where = `in-inode extended attributes of inode ${inode.ino}`;
  const start = GOOD_OLD_INODE_SIZE + inode.i_extra_isize;
  if (start + 4 > raw.length || raw.readUInt32LE(start) !== XATTR_MAGIC) return Buffer.alloc(0);
  const first = start + 4;
  let pos = first;
  // Entries are at least 16 bytes, so this loop ends within the inode.
  while (pos + 4 <= raw.length && raw.readUInt32LE(pos) !== 0) {
    if (pos + ENTRY_HEADER > raw.length) throw vol.corrupt(where, undefined, 'an entry runs past the end of the inode');
    const nameLen = raw.readUInt8(pos);
    const nameIndex = raw.readUInt8(pos + 1);
    const valueOffs = raw.readUInt16LE(pos + 2);
    const valueInum = raw.readUInt32LE(pos + 4);
    const valueSize = raw.readUInt32LE(pos + 8);
    const entryEnd = pos + ((ENTRY_HEADER + nameLen + 3) & ~3);
    if (entryEnd > raw.length) throw vol.corrupt(where, undefined, 'an entry name runs past the end of the inode');
    const name = raw.subarray(pos + ENTRY_HEADER, pos + ENTRY_HEADER + nameLen).toString('latin1');
    if (nameIndex === XATTR_INDEX_SYSTEM && name === 'data') {
      if (valueInum !== 0) throw vol.corrupt(where, undefined, 'system.data stored in an EA inode');
      if (first + valueOffs + valueSize > raw.length) throw vol.corrupt(where, undefined, `system.data value (${valueSize} bytes at ${valueOffs}) runs past the inode`);
      return raw.subarray(first + valueOffs, first + valueOffs + valueSize);
    }
    pos = entryEnd;
  }
  return Buffer.alloc(0);
}

/** The whole inline content of a file or symlink: i_block then system.data, cut to i_size. */
export function inlineContent(vol: ExtVolume, inode: Inode): Buffer {
  const extra = inode.size > N_BLOCKS_BYTES ? inlineXattrValue(vol, inode) : Buffer.alloc(0);
  const all = Buffer.concat([inode.i_block, extra]);
  if (inode.size > all.length) {
    throw vol.corrupt(`inline data of inode ${inode.ino}`, undefined, `i_size ${inode.size} is larger than the ${all.length} bytes stored inline`);
  }
  return all.subarray(0, inode.size);
}
