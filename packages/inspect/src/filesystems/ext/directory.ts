/**
 * Directory entries: ext4_dir_entry_2 records (inode, rec_len, name_len,
 * file_type, name) packed into blocks. Hashed (htree) directories keep a
 * linear layout underneath: the dx root is block 0 with "." and a ".." whose
 * rec_len swallows the index, and interior index blocks look like one empty
 * entry spanning the block, so reading every block linearly visits exactly
 * the leaves. Inline directories hold the parent in the first 4 bytes of
 * i_block and entries after it and in system.data.
 */
import { crc32c } from './checksum.ts';
import { ExtChecksumError } from './errors.ts';
import { mapBlocks } from './mapping.ts';
import { INCOMPAT, hasIncompat } from './superblock.ts';
import { inlineXattrValue } from './inlineData.ts';
import { INODE_FLAGS, type Inode } from './inode.ts';
import type { ExtVolume } from './volume.ts';
import type { FileType } from '../filesystem.ts';
import { directoryTooLarge } from '../directoryLimit.ts';

export interface RawDirEntry {
  ino: number;
  name: Buffer;
  /** From file_type when INCOMPAT_FILETYPE, else 'unknown'. */
  type: FileType;
}

const FILE_TYPES: FileType[] = ['unknown', 'file', 'directory', 'chardev', 'blockdev', 'fifo', 'socket', 'symlink'];
/** file_type of the metadata_csum tail pseudo-entry. */
const CSUM_TAIL_TYPE = 0xde;

/** Parse the records in `buf` (one directory block, or an inline region). */
export function parseEntries(vol: ExtVolume, buf: Buffer, where: string, offset: number | undefined, out: RawDirEntry[]): void {
  const hasType = hasIncompat(vol.sb, INCOMPAT.FILETYPE);
  let pos = 0;
  while (pos < buf.length) {
    if (pos + 8 > buf.length) throw vol.corrupt(where, offset, `a directory entry header at ${pos} runs past the end`);
    const ino = buf.readUInt32LE(pos);
    let recLen = buf.readUInt16LE(pos + 4);
    // 64 KiB blocks encode a full-block record as 0 or 65535 (ext4_rec_len_from_disk).
    if (vol.blockSize >= 65536 && (recLen === 65535 || recLen === 0)) recLen = vol.blockSize;
    const nameLen = hasType ? buf.readUInt8(pos + 6) : buf.readUInt16LE(pos + 6);
    const fileType = hasType ? buf.readUInt8(pos + 7) : 0;
    if (recLen < 12 && !(recLen === 8 && buf.length - pos === 8 && ino === 0)) {
      throw vol.corrupt(where, offset, `directory entry at ${pos} has rec_len ${recLen} (too small)`);
    }
    if (recLen % 4 !== 0) throw vol.corrupt(where, offset, `directory entry at ${pos} has rec_len ${recLen} (not a multiple of 4)`);
    if (pos + recLen > buf.length) throw vol.corrupt(where, offset, `directory entry at ${pos} has rec_len ${recLen}, past the end of the block`);
    if (ino !== 0) {
      if (8 + nameLen > recLen) throw vol.corrupt(where, offset, `directory entry at ${pos}: name_len ${nameLen} does not fit rec_len ${recLen}`);
      if (nameLen === 0) throw vol.corrupt(where, offset, `directory entry at ${pos} has an empty name`);
      if (ino > vol.sb.s_inodes_count) throw vol.corrupt(where, offset, `directory entry at ${pos} names inode ${ino}, beyond s_inodes_count`);
      if (!(fileType === CSUM_TAIL_TYPE && nameLen === 0)) {
        out.push({ ino, name: Buffer.from(buf.subarray(pos + 8, pos + 8 + nameLen)), type: FILE_TYPES[fileType] ?? 'unknown' });
      }
    }
    pos += recLen;
  }
}

/** Every entry of a directory, "." and ".." included (as stored). */
export async function readDirectoryEntries(vol: ExtVolume, inode: Inode): Promise<RawDirEntry[]> {
  const out: RawDirEntry[] = [];
  if (inode.i_flags & INODE_FLAGS.INLINE_DATA) {
    const parent = inode.i_block.readUInt32LE(0);
    out.push({ ino: inode.ino, name: Buffer.from('.'), type: 'directory' });
    out.push({ ino: parent, name: Buffer.from('..'), type: 'directory' });
    const where = `inline directory inode ${inode.ino}`;
    parseEntries(vol, inode.i_block.subarray(4), where, undefined, out);
    const extra = inlineXattrValue(vol, inode);
    if (extra.length) parseEntries(vol, extra, where, undefined, out);
    return out;
  }
  if (inode.size > vol.limits.maxDirectoryBytes) {
    throw vol.corrupt(`directory inode ${inode.ino}`, undefined, `i_size ${inode.size} exceeds the ${vol.limits.maxDirectoryBytes}-byte limit for directories`);
  }
  const blocks = Math.ceil(inode.size / vol.blockSize);
  const chunk = 256;
  for (let first = 0; first < blocks; first += chunk) {
    const runs = await mapBlocks(vol, inode, first, Math.min(chunk, blocks - first));
    for (const run of runs) {
      // Holes in directories read as nothing (the kernel reports them as errors on lookup; listing skips them).
      if (run.pblk === undefined) continue;
      for (let i = 0; i < run.length; i++) {
        const pblk = run.pblk + i;
        const data = await vol.cache.read(pblk);
        if (vol.sb.metadataCsum) verifyLeafTail(vol, inode, data, pblk, run.lblk + i);
        parseEntries(vol, data, `directory inode ${inode.ino} block ${run.lblk + i}`, pblk * vol.blockSize, out);
        if (out.length > vol.limits.maxDirectoryEntries) {
          throw directoryTooLarge(vol.image, `directory inode ${inode.ino}`, vol.limits.maxDirectoryEntries);
        }
      }
    }
  }
  return out;
}

/**
 * metadata_csum leaf blocks end in a 12-byte pseudo-entry (inode 0, rec_len
 * 12, file_type 0xde) holding crc32c of the block before it. Index (htree)
 * blocks have no such tail and are left alone.
 */
export function verifyLeafTail(vol: ExtVolume, inode: Inode, data: Buffer, pblk: number, lblk: number): void {
  // htree index blocks (the root, and interior nodes that start with one empty entry spanning the block) carry a different tail.
  if (inode.i_flags & INODE_FLAGS.INDEX) {
    if (lblk === 0) return;
    const recLen = data.readUInt16LE(4);
    if (data.readUInt32LE(0) === 0 && (recLen === data.length || (data.length >= 65536 && (recLen === 0 || recLen === 65535)))) return;
  }
  const t = data.length - 12;
  if (data.readUInt32LE(t) !== 0 || data.readUInt16LE(t + 4) !== 12 || data.readUInt8(t + 6) !== 0 || data.readUInt8(t + 7) !== CSUM_TAIL_TYPE) return;
  const computed = crc32c(inode.csumSeed, data, 0, t);
  const stored = data.readUInt32LE(t + 8);
  if (computed !== stored) {
    throw new ExtChecksumError(vol.image, `directory inode ${inode.ino} block ${lblk}`, pblk * vol.blockSize, computed, stored, { retryable: vol.retryable });
  }
}
