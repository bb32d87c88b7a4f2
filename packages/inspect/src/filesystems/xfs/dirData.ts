/**
 * Directory data blocks: the one block of a block-form directory (entries,
 * then its hash-sorted leaf entries and a tail at the end) and the data
 * blocks of leaf- and node-form directories. A block is a header, then
 * 8-byte-aligned entries (inode number, name length, name, ftype, a tag
 * holding the entry's own offset) and unused regions (0xffff, length, ...,
 * tag). Checked as __xfs_dir3_data_check checks them on every read: the
 * header (v5: CRC, address, owner, UUID), every entry and unused region in
 * bounds and tagged with its own offset, no two unused regions in a row,
 * names non-empty, file types known, inode numbers valid.
 */
import { verifyV5Header, type DaBlock } from './daBlock.ts';
import { dataEntrySize, validDirIno, type RawDirEntry } from './dirEntry.ts';
import {
  DIR2_BLOCK_TAIL_LEN,
  DIR2_DATA_HDR_LEN,
  DIR2_LEAF_ENTRY_LEN,
  DIR3_BLK_HDR,
  DIR3_DATA_HDR_LEN,
  DIR3_FT,
  XFS_DIR2_BLOCK_MAGIC,
  XFS_DIR2_DATA_FREE_TAG,
  XFS_DIR2_DATA_MAGIC,
  XFS_DIR3_BLOCK_MAGIC,
  XFS_DIR3_DATA_MAGIC,
} from './layout.ts';
import type { XfsVolume } from './volume.ts';

export type DataBlockKind = 'block' | 'data';

export interface LeafEntry {
  hashval: number;
  /** Data pointer: the entry's byte offset in the directory divided by 8; 0 for a stale entry. */
  address: number;
}

export interface ParsedDataBlock {
  entries: RawDirEntry[];
  /** Block form only: the embedded, hash-sorted leaf entries. */
  leaf?: LeafEntry[];
}

/**
 * Parse the data (or single) block `block` of directory `owner`; `what`
 * names it in errors.
 */
export function parseDataBlock(vol: XfsVolume, block: DaBlock, owner: number, kind: DataBlockKind, what: string): ParsedDataBlock {
  const b = block.buf;
  const bad = (detail: string) => vol.corrupt(what, block.byteOffset, detail);
  const v5 = vol.sb.hasCrc;
  const magic = b.readUInt32BE(0);
  const expected = kind === 'block' ? (v5 ? XFS_DIR3_BLOCK_MAGIC : XFS_DIR2_BLOCK_MAGIC) : v5 ? XFS_DIR3_DATA_MAGIC : XFS_DIR2_DATA_MAGIC;
  if (magic !== expected) throw bad(`bad magic 0x${magic.toString(16)}`);
  if (v5) verifyV5Header(vol, block, owner, what, { crc: DIR3_BLK_HDR.crc, blkno: DIR3_BLK_HDR.blkno, owner: DIR3_BLK_HDR.owner, uuid: DIR3_BLK_HDR.uuid });
  const hdr = v5 ? DIR3_DATA_HDR_LEN : DIR2_DATA_HDR_LEN;

  let end = b.length;
  let leaf: LeafEntry[] | undefined;
  if (kind === 'block') {
    const tail = b.length - DIR2_BLOCK_TAIL_LEN;
    const count = b.readUInt32BE(tail);
    const stale = b.readUInt32BE(tail + 4);
    const leafStart = tail - count * DIR2_LEAF_ENTRY_LEN;
    if (count === 0 || leafStart < hdr || stale > count) throw bad(`${count} leaf entries (${stale} stale) do not fit the block`);
    end = leafStart;
    leaf = [];
    let prevHash = 0;
    for (let i = 0; i < count; i++) {
      const hashval = b.readUInt32BE(leafStart + i * DIR2_LEAF_ENTRY_LEN);
      const address = b.readUInt32BE(leafStart + i * DIR2_LEAF_ENTRY_LEN + 4);
      if (hashval < prevHash) throw bad(`leaf entry ${i} is out of hash order`);
      prevHash = hashval;
      leaf.push({ hashval, address });
    }
  }

  const entries: RawDirEntry[] = [];
  const ftype = vol.sb.hasFtype;
  const minEntry = dataEntrySize(vol, 1);
  let offset = hdr;
  let lastFree = false;
  while (offset < end) {
    if (b.readUInt16BE(offset) === XFS_DIR2_DATA_FREE_TAG) {
      if (offset + 4 > end) throw bad(`an unused region at byte ${offset} runs past the end`);
      const length = b.readUInt16BE(offset + 2);
      if (lastFree) throw bad(`two unused regions in a row at byte ${offset}`);
      if (length < 8 || length % 8 !== 0 || offset + length > end) throw bad(`an unused region of ${length} bytes at byte ${offset}`);
      if (b.readUInt16BE(offset + length - 2) !== offset) throw bad(`the unused region at byte ${offset} is tagged ${b.readUInt16BE(offset + length - 2)}`);
      offset += length;
      lastFree = true;
      continue;
    }
    if (offset > end - minEntry) throw bad(`an entry at byte ${offset} runs past the end`);
    const namelen = b[offset + 8];
    if (namelen === 0) throw bad(`the entry at byte ${offset} has an empty name`);
    const size = dataEntrySize(vol, namelen);
    if (offset + size > end) throw bad(`the entry at byte ${offset} runs past the end`);
    const ino = b.readBigUInt64BE(offset);
    if (!validDirIno(vol, ino)) throw bad(`the entry at byte ${offset} points at invalid inode ${ino}`);
    if (b.readUInt16BE(offset + size - 2) !== offset) throw bad(`the entry at byte ${offset} is tagged ${b.readUInt16BE(offset + size - 2)}`);
    const ft = ftype ? b[offset + 9 + namelen] : DIR3_FT.UNKNOWN;
    if (ft >= DIR3_FT.MAX) throw bad(`the entry at byte ${offset} has file type ${ft}`);
    entries.push({ name: Buffer.from(b.subarray(offset + 9, offset + 9 + namelen)), ino, ftype: ft, offset });
    offset += size;
    lastFree = false;
  }
  if (offset !== end) throw bad(`the entries end at byte ${offset}, not at ${end}`);
  return { entries, leaf };
}
