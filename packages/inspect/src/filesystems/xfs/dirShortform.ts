/**
 * Short-form directories, kept in the inode's data fork: a header (entry
 * count, count of 8-byte inode numbers, the parent) and packed entries
 * (name length, a saved offset, the name, the file type with ftype, a 4- or
 * 8-byte inode number). Checked as xfs_dir2_sf_verify checks them: every
 * entry inside the fork, offsets increasing, inode numbers valid, i8count
 * matching, and the last entry ending exactly at di_size.
 */
import { DIR2_DATA_HDR_LEN, DIR2_SF_HDR_LEN_I4, DIR2_SF_HDR_LEN_I8, DIR3_DATA_HDR_LEN, DIR3_FT, XFS_MAXINUMBER } from './layout.ts';
import type { Inode } from './inode.ts';
import type { RawDirEntry } from './dirEntry.ts';
import { dataEntrySize, validDirIno } from './dirEntry.ts';
import type { XfsVolume } from './volume.ts';

export interface ShortformDirectory {
  parent: bigint;
  entries: RawDirEntry[];
}

export function parseShortformDirectory(vol: XfsVolume, inode: Inode): ShortformDirectory {
  const where = `short-form directory of inode ${inode.ino}`;
  const bad = (detail: string) => vol.corrupt(where, inode.byteOffset, detail);
  const size = inode.di_size;
  const b = inode.data.bytes;
  if (size > b.length) throw bad(`${size} bytes do not fit a ${b.length}-byte fork`);
  if (size <= 2) throw bad(`only ${size} bytes`);
  const count = b[0];
  const i8count = b[1];
  const hdrLen = i8count ? DIR2_SF_HDR_LEN_I8 : DIR2_SF_HDR_LEN_I4;
  if (size < hdrLen) throw bad(`${size} bytes cannot hold the header`);
  const inoSize = i8count ? 8 : 4;
  const readIno = (off: number): bigint => (i8count ? b.readBigUInt64BE(off) & XFS_MAXINUMBER : BigInt(b.readUInt32BE(off)));
  const parent = readIno(2);
  if (!validDirIno(vol, parent)) throw bad(`parent inode ${parent} is invalid`);
  let wide = parent > 0xffffffffn ? 1 : 0;
  const ftype = vol.sb.hasFtype;
  const entries: RawDirEntry[] = [];
  let off = hdrLen;
  // Offsets saved in entries say where they would go in a block directory; they only increase.
  let minOffset = (vol.sb.hasCrc ? DIR3_DATA_HDR_LEN : DIR2_DATA_HDR_LEN) + dataEntrySize(vol, 1) + dataEntrySize(vol, 2);
  for (let i = 0; i < count; i++) {
    if (off + 3 >= size) throw bad(`entry ${i} starts past the end`);
    const namelen = b[off];
    if (namelen === 0) throw bad(`entry ${i} has an empty name`);
    const entEnd = off + 3 + namelen + (ftype ? 1 : 0) + inoSize;
    if (entEnd > size) throw bad(`entry ${i} runs past the end`);
    const saved = b.readUInt16BE(off + 1);
    if (saved < minOffset) throw bad(`entry ${i} has offset ${saved}, below the previous entry's end ${minOffset}`);
    const name = Buffer.from(b.subarray(off + 3, off + 3 + namelen));
    const ft = ftype ? b[off + 3 + namelen] : DIR3_FT.UNKNOWN;
    if (ft >= DIR3_FT.MAX) throw bad(`entry ${i} has file type ${ft}`);
    const ino = readIno(off + 3 + namelen + (ftype ? 1 : 0));
    if (!validDirIno(vol, ino)) throw bad(`entry ${i} points at invalid inode ${ino}`);
    if (ino > 0xffffffffn) wide++;
    entries.push({ name, ino, ftype: ft });
    minOffset = saved + dataEntrySize(vol, namelen);
    off = entEnd;
  }
  if (wide !== i8count) throw bad(`i8count is ${i8count} but ${wide} inode numbers need 8 bytes`);
  if (off !== size) throw bad(`the entries end at byte ${off}, the directory size is ${size}`);
  return { parent, entries };
}
