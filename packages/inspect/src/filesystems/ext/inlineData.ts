/**
 * Inline data (INCOMPAT_INLINE_DATA): small files and directories live in the
 * inode itself, the first 60 bytes in i_block and the rest in the value of the
 * in-inode extended attribute "system.data" (name index 7, name "data").
 */
import { GOOD_OLD_INODE_SIZE, N_BLOCKS_BYTES, type Inode } from './inode.ts';
import type { ExtVolume } from './volume.ts';
import { inInodeEntries, XATTR_MAGIC } from './xattr.ts';

const XATTR_INDEX_SYSTEM = 7;

/** The value of system.data from the in-inode xattr area (empty when absent). */
export function inlineXattrValue(vol: ExtVolume, inode: Inode): Buffer {
  const raw = inode.raw;
  const start = GOOD_OLD_INODE_SIZE + inode.i_extra_isize;
  if (start + 4 > raw.length || raw.readUInt32LE(start) !== XATTR_MAGIC) return Buffer.alloc(0);
  for (const e of inInodeEntries(vol, inode)) {
    if (e.nameIndex !== XATTR_INDEX_SYSTEM || e.suffix.toString('latin1') !== 'data') continue;
    if (e.valueInum !== 0) throw vol.corrupt(`in-inode extended attributes of inode ${inode.ino}`, undefined, 'system.data stored in an EA inode');
    return e.area.subarray(e.valueStart, e.valueStart + e.valueSize);
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
