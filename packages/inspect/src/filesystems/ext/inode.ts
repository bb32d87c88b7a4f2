/**
 * Inodes: located through their group's descriptor, read one inode-table
 * block at a time (never the whole table), checksummed with metadata_csum as
 * ext4_inode_csum does, and decoded into the fields the driver uses.
 */
import { crc32c, crc32cLe32 } from './checksum.ts';
import { ExtChecksumError, ExtError } from './errors.ts';
import { RO_COMPAT, hasRoCompat } from './superblock.ts';
import type { ExtVolume } from './volume.ts';
import type { Timestamp } from '../filesystem.ts';

export const GOOD_OLD_INODE_SIZE = 128;
export const N_BLOCKS_BYTES = 60;

// i_flags bits that change how an inode is read.
export const INODE_FLAGS = {
  SECRM: 0x1,
  COMPR: 0x4,
  IMMUTABLE: 0x10,
  APPEND: 0x20,
  INDEX: 0x1000,
  ENCRYPT: 0x800,
  HUGE_FILE: 0x40000,
  EXTENTS: 0x80000,
  VERITY: 0x100000,
  EA_INODE: 0x200000,
  INLINE_DATA: 0x10000000,
} as const;

// The mode bits have one owner (../posixMode.ts); re-exported for this driver's modules.
export { S_IFMT, S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO, fileTypeOfMode } from '../posixMode.ts';
import { S_IFMT, S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO, fileTypeOfMode } from '../posixMode.ts';

export interface Inode {
  ino: number;
  i_mode: number;
  uid: number;
  gid: number;
  /** i_size_lo | i_size_high << 32, as a number (an image claiming more than 2^53 bytes is refused). */
  size: number;
  i_links_count: number;
  /** st_blocks: 512-byte units. */
  blocks512: number;
  i_flags: number;
  /** The 60 bytes of i_block: extent root, block pointers, fast symlink target or inline data. */
  i_block: Buffer;
  i_generation: number;
  i_file_acl: number;
  i_extra_isize: number;
  atime: Timestamp;
  mtime: Timestamp;
  ctime: Timestamp;
  crtime?: Timestamp;
  /** The inode's full on-disk bytes (s_inode_size): in-inode extended attributes live at the end. */
  raw: Buffer;
  /** Seed for checksums of this inode's extent and directory blocks. */
  csumSeed: number;
  /** Deletion time (and, on the orphan list, the next orphan). */
  i_dtime: number;
}

/** Where inode `ino` lives on disk: its byte offset. Validates the number. */
export function inodeLocation(vol: ExtVolume, ino: number): { block: number; offsetInBlock: number } {
  const sb = vol.sb;
  if (!Number.isInteger(ino) || ino < 1 || ino > sb.s_inodes_count) {
    throw new ExtError('EINVAL', vol.image, `inode number ${ino} is out of range (1..${sb.s_inodes_count})`);
  }
  const group = Math.floor((ino - 1) / sb.s_inodes_per_group);
  const index = (ino - 1) % sb.s_inodes_per_group;
  const byteInTable = index * sb.s_inode_size;
  const block = vol.groups[group].bg_inode_table + Math.floor(byteInTable / sb.blockSize);
  return { block, offsetInBlock: byteInTable % sb.blockSize };
}

export interface ReadInodeOptions {
  /** Internal inodes (journal, resize) are read even with a zero link count. */
  special?: boolean;
}

export async function readInode(vol: ExtVolume, ino: number, options: ReadInodeOptions = {}): Promise<Inode> {
  const sb = vol.sb;
  const { block, offsetInBlock } = inodeLocation(vol, ino);
  const data = await vol.cache.read(block);
  const raw = Buffer.from(data.subarray(offsetInBlock, offsetInBlock + sb.s_inode_size));
  return decodeInode(vol, ino, raw, block * sb.blockSize + offsetInBlock, options);
}

/** An inode from its on-disk bytes (`byteOffset` names where they were, for errors): validated, checksum verified. */
export function decodeInode(vol: ExtVolume, ino: number, raw: Buffer, byteOffset: number, options: ReadInodeOptions = {}): Inode {
  const sb = vol.sb;
  const where = `inode ${ino}`;

  const i_links_count = raw.readUInt16LE(0x1a);
  const i_mode = raw.readUInt16LE(0x00);
  if (!options.special && i_links_count === 0) {
    throw new ExtError('ENOENT', vol.image, `inode ${ino} is not in use (link count 0)${i_mode === 0 ? '' : '; a directory entry points at a deleted inode, the filesystem is inconsistent'}`, { retryable: vol.retryable });
  }

  let i_extra_isize = 0;
  if (sb.s_inode_size > GOOD_OLD_INODE_SIZE) {
    i_extra_isize = raw.readUInt16LE(0x80);
    if (GOOD_OLD_INODE_SIZE + i_extra_isize > sb.s_inode_size || (i_extra_isize & 3) !== 0) {
      throw vol.corrupt(where, byteOffset, `i_extra_isize ${i_extra_isize} does not fit an inode of ${sb.s_inode_size} bytes`);
    }
  }
  const fits = (fieldOffset: number, size: number) => GOOD_OLD_INODE_SIZE + i_extra_isize >= fieldOffset + size;

  const i_generation = raw.readUInt32LE(0x64);
  let csumSeed = 0;
  if (sb.metadataCsum) {
    csumSeed = crc32cLe32(crc32cLe32(sb.csumSeed, ino), i_generation);
    verifyInodeChecksum(vol, raw, csumSeed, fits(0x82, 2), where, byteOffset);
  }

  const i_flags = raw.readUInt32LE(0x20);
  const sizeHigh = raw.readUInt32LE(0x6c);
  const size = raw.readUInt32LE(0x04) + sizeHigh * 2 ** 32;
  if (!Number.isSafeInteger(size) || sizeHigh >= 2 ** 21) {
    throw vol.corrupt(where, byteOffset, `i_size ${BigInt(raw.readUInt32LE(0x04)) | (BigInt(sizeHigh) << 32n)} is beyond 2^53 bytes`);
  }

  let blocks = raw.readUInt32LE(0x1c);
  if (hasRoCompat(sb, RO_COMPAT.HUGE_FILE)) {
    blocks += raw.readUInt16LE(0x74) * 2 ** 32;
    if (i_flags & INODE_FLAGS.HUGE_FILE) blocks *= sb.blockSize / 512;
  }

  const time = (secOff: number, extraOff: number | undefined): Timestamp => {
    let sec = raw.readInt32LE(secOff);
    let nsec = 0;
    if (extraOff !== undefined && fits(extraOff, 4)) {
      const extra = raw.readUInt32LE(extraOff);
      // The low two bits extend the signed 32-bit seconds past 2038 (ext4_decode_extra_time).
      sec += (extra & 3) * 2 ** 32;
      nsec = extra >>> 2;
    }
    return { sec, nsec };
  };

  return {
    ino,
    i_mode,
    uid: raw.readUInt16LE(0x02) + raw.readUInt16LE(0x78) * 0x10000,
    gid: raw.readUInt16LE(0x18) + raw.readUInt16LE(0x7a) * 0x10000,
    size,
    i_links_count,
    blocks512: blocks,
    i_flags,
    i_block: Buffer.from(raw.subarray(0x28, 0x28 + N_BLOCKS_BYTES)),
    i_generation,
    i_file_acl: raw.readUInt32LE(0x68) + raw.readUInt16LE(0x76) * 2 ** 32,
    i_extra_isize,
    atime: time(0x08, 0x8c),
    ctime: time(0x0c, 0x84),
    mtime: time(0x10, 0x88),
    crtime: fits(0x90, 4) ? time(0x90, 0x94) : undefined,
    raw,
    csumSeed,
    i_dtime: raw.readUInt32LE(0x14),
  };
}

/** ext4_inode_csum: crc32c over the inode with the checksum fields zeroed; 16 bits only when i_checksum_hi does not fit. */
export function inodeChecksum(raw: Buffer, seed: number, hasHi: boolean): number {
  const size = raw.length;
  const zero2 = Buffer.alloc(2);
  let c = crc32c(seed, raw, 0, 0x7c);
  c = crc32c(c, zero2);
  c = crc32c(c, raw, 0x7e, GOOD_OLD_INODE_SIZE);
  if (size > GOOD_OLD_INODE_SIZE) {
    c = crc32c(c, raw, GOOD_OLD_INODE_SIZE, 0x82);
    let offset = 0x82;
    if (hasHi) {
      c = crc32c(c, zero2);
      offset += 2;
    }
    c = crc32c(c, raw, offset, size);
  }
  return size > GOOD_OLD_INODE_SIZE && hasHi ? c : c & 0xffff;
}

function verifyInodeChecksum(vol: ExtVolume, raw: Buffer, seed: number, hasHi: boolean, where: string, byteOffset: number): void {
  const computed = inodeChecksum(raw, seed, hasHi);
  let stored = raw.readUInt16LE(0x7c);
  if (raw.length > GOOD_OLD_INODE_SIZE && hasHi) stored = (stored | (raw.readUInt16LE(0x82) << 16)) >>> 0;
  if (stored !== computed) throw new ExtChecksumError(vol.image, where, byteOffset, computed, stored, { retryable: vol.retryable });
}

/** Device numbers of a chardev/blockdev inode: old 16-bit encoding in i_block[0], else the new one in i_block[1]. */
export function deviceNumber(inode: Inode): { major: number; minor: number } {
  const old = inode.i_block.readUInt32LE(0);
  if (old !== 0) return { major: (old >>> 8) & 0xff, minor: old & 0xff };
  const dev = inode.i_block.readUInt32LE(4);
  return { major: (dev & 0xfff00) >>> 8, minor: (dev & 0xff) | ((dev >>> 12) & 0xfff00) };
}
