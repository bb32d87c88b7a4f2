/**
 * Inodes: located by number (AG, block in the AG, slot in the block), read
 * one filesystem block at a time through the cache, and checked as the
 * kernel checks an inode before using it (xfs_dinode_verify and the fork
 * formatting of xfs_iformat_*): magic, version, CRC, owner and UUID on v3,
 * counters, fork offsets and formats. The core is decoded into the fields
 * the driver uses; the forks stay raw slices for the fork readers.
 */
import { UnsafeNumberError } from '@guestlens/block';
import type { FileType, Timestamp } from '../filesystem.ts';
import { XfsError } from './errors.ts';
import {
  BMBT_KEY_LEN,
  BMBT_PTR_LEN,
  BMBT_REC_LEN,
  BMDR_HEADER_LEN,
  DIFLAG,
  DIFLAG2,
  DINODE,
  DINODE_CORE_V2,
  DINODE_CORE_V3,
  FMT,
  MAX_EXTCNT_ATTR_FORK_LARGE,
  MAX_EXTCNT_ATTR_FORK_SMALL,
  MAX_EXTCNT_DATA_FORK_LARGE,
  MAX_EXTCNT_DATA_FORK_SMALL,
  XFS_DINODE_MAGIC,
} from './layout.ts';
import { decodeTimestamp } from './timestamp.ts';
import type { XfsVolume } from './volume.ts';

// The mode bits have one owner (../posixMode.ts); re-exported for this driver's modules.
export { S_IFMT, S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO, fileTypeOfMode } from '../posixMode.ts';
import { S_IFMT, S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO, fileTypeOfMode } from '../posixMode.ts';

/** The deepest bmap btree any geometry allows (XFS_BM_MAXLEVELS is at most 9 with 64-bit counts). */
export const MAX_BMBT_LEVELS = 9;

export type ForkName = 'data' | 'attr';

/** One fork of an inode, as stored in the inode's literal area. */
export interface Fork {
  which: ForkName;
  format: number;
  /** The fork's bytes inside the inode (extent records, a btree root, local data). */
  bytes: Buffer;
  /** Extent count from the inode core. */
  nextents: number;
}

export interface Inode {
  ino: number;
  di_version: number;
  di_mode: number;
  di_uid: number;
  di_gid: number;
  nlink: number;
  di_size: number;
  di_nblocks: number;
  di_flags: number;
  /** The low 32 bits of di_flags2 (every defined flag lives there). */
  di_flags2: number;
  di_gen: number;
  di_forkoff: number;
  atime: Timestamp;
  mtime: Timestamp;
  ctime: Timestamp;
  crtime?: Timestamp;
  data: Fork;
  attr?: Fork;
  /** The inode's on-disk bytes (sb_inodesize). */
  raw: Buffer;
  /** Byte offset of the inode in the filesystem. */
  byteOffset: number;
}

export interface InodeLocation {
  agno: number;
  /** Linear block number holding the inode. */
  block: number;
  offsetInBlock: number;
  byteOffset: number;
}

/** Where inode `ino` lives; throws for numbers that cannot be inodes of this filesystem. */
export function inodeLocation(vol: XfsVolume, ino: number): InodeLocation {
  const sb = vol.sb;
  if (!Number.isSafeInteger(ino) || ino < 0) throw new XfsError('EINVAL', vol.image, `inode number ${ino} is invalid`);
  const agino = ino % 2 ** sb.aginoLog;
  const agno = Math.floor(ino / 2 ** sb.aginoLog);
  const agbno = Math.floor(agino / sb.sb_inopblock);
  const block = vol.agbToLinear(agno, agbno);
  if (block === undefined) {
    throw new XfsError('EINVAL', vol.image, `inode number ${ino} is out of range (AG ${agno}, block ${agbno}; the filesystem has ${sb.sb_agcount} AGs of ${sb.sb_agblocks} blocks)`);
  }
  const offsetInBlock = (agino % sb.sb_inopblock) * sb.sb_inodesize;
  return { agno, block, offsetInBlock, byteOffset: block * vol.blockSize + offsetInBlock };
}

/** A 64-bit inode number from disk as a JS number: EOVERFLOW beyond 2^53 (a huge inode64 filesystem), as the interface asks. */
export function inodeNumber(vol: XfsVolume, value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new UnsafeNumberError(`${vol.image}: ${what}`, value);
  return Number(value);
}

/** Bytes of the inode core (v1/v2 or v3). */
export function coreSize(vol: XfsVolume): number {
  return vol.sb.version === 5 ? DINODE_CORE_V3 : DINODE_CORE_V2;
}

/** The literal area after the core that the two forks share (XFS_LITINO). */
export function literalAreaSize(vol: XfsVolume): number {
  return vol.sb.sb_inodesize - coreSize(vol);
}

/** Records a btree root of `forkSize` bytes holds (xfs_bmdr_maxrecs for nodes). */
export function bmdrMaxRecs(forkSize: number): number {
  return Math.floor((forkSize - BMDR_HEADER_LEN) / (BMBT_KEY_LEN + BMBT_PTR_LEN));
}

export interface ReadInodeOptions {
  /** Return free inodes (mode 0) too, for enumeration of deleted ones; their forks are not checked. */
  allowFree?: boolean;
}

export async function readInode(vol: XfsVolume, ino: number, options: ReadInodeOptions = {}): Promise<Inode> {
  const loc = inodeLocation(vol, ino);
  const block = await vol.readBlock(loc.block);
  const raw = Buffer.from(block.subarray(loc.offsetInBlock, loc.offsetInBlock + vol.sb.sb_inodesize));
  return decodeInode(vol, ino, raw, loc.byteOffset, options);
}

/** Check and decode the on-disk bytes of inode `ino`. */
export function decodeInode(vol: XfsVolume, ino: number, raw: Buffer, byteOffset: number, options: ReadInodeOptions = {}): Inode {
  const sb = vol.sb;
  const where = `inode ${ino}`;
  const bad = (detail: string) => vol.corrupt(where, byteOffset, detail);
  const u16 = (o: number) => raw.readUInt16BE(o);
  const u32 = (o: number) => raw.readUInt32BE(o);

  if (u16(DINODE.di_magic) !== XFS_DINODE_MAGIC) throw bad(`bad magic 0x${u16(DINODE.di_magic).toString(16)}`);
  const di_version = raw[DINODE.di_version];
  if (sb.version === 5 ? di_version !== 3 : di_version !== 1 && di_version !== 2) {
    throw bad(`version ${di_version} inode on a version ${sb.version} filesystem`);
  }
  if (di_version === 3) {
    vol.verifyCrc(raw, DINODE.di_crc, where, byteOffset);
    const stored = raw.readBigUInt64BE(DINODE.di_ino);
    if (stored !== BigInt(ino)) throw bad(`it records inode number ${stored}`);
    if (!raw.subarray(DINODE.di_uuid, DINODE.di_uuid + 16).equals(sb.metaUuid)) throw bad('its UUID is not the filesystem\'s');
  }
  if (di_version >= 2 && u16(DINODE.di_onlink) !== 0) throw bad(`di_onlink is ${u16(DINODE.di_onlink)} in a version ${di_version} inode`);

  const di_mode = u16(DINODE.di_mode);
  const type = fileTypeOfMode(di_mode);
  if (di_mode !== 0 && type === 'unknown') throw bad(`mode 0${di_mode.toString(8)} has no file type`);
  if (di_mode === 0 && !options.allowFree) {
    throw new XfsError('ENOENT', vol.image, `inode ${ino} is not in use; a directory entry points at a free inode, the filesystem is inconsistent`, { retryable: vol.retryable });
  }

  const sizeBig = raw.readBigUInt64BE(DINODE.di_size);
  if (sizeBig >> 63n) throw bad(`di_size ${sizeBig} is negative`);
  if (sizeBig > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`di_size ${sizeBig} is beyond 2^53 bytes`);
  const di_size = Number(sizeBig);
  const nlink = di_version === 1 ? u16(DINODE.di_onlink) : u32(DINODE.di_nlink);
  if ((type === 'symlink' || type === 'directory') && di_size === 0 && nlink !== 0) throw bad(`a ${type} of size 0`);

  const di_flags2 = di_version === 3 ? u32(DINODE.di_flags2 + 4) : 0;
  const nrext64 = (di_flags2 & DIFLAG2.NREXT64) !== 0;
  if (nrext64) {
    if (!sb.hasNrext64) throw bad('large extent counters on a filesystem without nrext64');
    if (u16(DINODE.di_anextents) !== 0) throw bad('the padding after the large attr extent count is not zero');
  } else if (di_version === 3 && raw.readBigUInt64BE(DINODE.di_big_nextents) !== 0n) {
    throw bad('the v3 padding where large extent counters go is not zero');
  }
  const dataExtentsBig = nrext64 ? raw.readBigUInt64BE(DINODE.di_big_nextents) : BigInt(u32(DINODE.di_nextents));
  const attrExtents = nrext64 ? u32(DINODE.di_nextents) : u16(DINODE.di_anextents);
  const nblocksBig = raw.readBigUInt64BE(DINODE.di_nblocks);
  if (dataExtentsBig > BigInt(MAX_EXTCNT_DATA_FORK_LARGE) || nblocksBig > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`extent count ${dataExtentsBig} or block count ${nblocksBig} is absurd`);
  const dataExtents = Number(dataExtentsBig);
  const di_nblocks = Number(nblocksBig);
  if (di_mode !== 0 && dataExtents + attrExtents > di_nblocks) throw bad(`${dataExtents + attrExtents} extents but only ${di_nblocks} blocks`);
  if (dataExtents + attrExtents === 0 && di_nblocks !== 0) throw bad(`${di_nblocks} blocks but no extents`);

  const di_forkoff = raw[DINODE.di_forkoff];
  const di_format = raw[DINODE.di_format];
  const di_aformat = raw.readInt8(DINODE.di_aformat);
  const di_flags = u16(DINODE.di_flags);
  const litino = literalAreaSize(vol);
  if (di_mode !== 0 && di_forkoff * 8 > sb.sb_inodesize) throw bad(`fork offset ${di_forkoff * 8} is past the end of the inode`);
  if (di_mode !== 0 && di_flags & DIFLAG.REALTIME && sb.sb_rblocks === 0) throw bad('a realtime file on a filesystem without a realtime device');
  if (di_forkoff) {
    if (di_format === FMT.DEV ? di_forkoff !== 1 : di_format >= FMT.LOCAL && di_format <= FMT.BTREE ? di_forkoff >= litino >> 3 : true) {
      throw bad(`fork offset ${di_forkoff * 8} does not suit data fork format ${di_format}`);
    }
  }

  const bigtime = di_version === 3 && (di_flags2 & DIFLAG2.BIGTIME) !== 0;
  if (bigtime && !sb.hasBigtime) throw bad('big timestamps on a filesystem without bigtime');
  if (di_version === 3) {
    if (di_flags2 & (DIFLAG2.REFLINK | DIFLAG2.COWEXTSIZE) && !sb.hasReflink) throw bad('reflink flags on a filesystem without reflink');
    if (di_flags2 & DIFLAG2.REFLINK && type !== 'file') throw bad(`a reflinked ${type}`);
  }

  const core = coreSize(vol);
  const dataSize = di_forkoff ? di_forkoff * 8 : litino;
  const data: Fork = { which: 'data', format: di_format, bytes: raw.subarray(core, core + dataSize), nextents: dataExtents };
  let attr: Fork | undefined;
  if (di_forkoff) attr = { which: 'attr', format: di_aformat, bytes: raw.subarray(core + dataSize, core + litino), nextents: attrExtents };

  const inode: Inode = {
    ino,
    di_version,
    di_mode,
    di_uid: u32(DINODE.di_uid),
    di_gid: u32(DINODE.di_gid),
    nlink,
    di_size,
    di_nblocks,
    di_flags,
    di_flags2,
    di_gen: u32(DINODE.di_gen),
    di_forkoff,
    atime: decodeTimestamp(raw, DINODE.di_atime, bigtime),
    mtime: decodeTimestamp(raw, DINODE.di_mtime, bigtime),
    ctime: decodeTimestamp(raw, DINODE.di_ctime, bigtime),
    crtime: di_version === 3 ? decodeTimestamp(raw, DINODE.di_crtime, bigtime) : undefined,
    data,
    attr,
    raw,
    byteOffset,
  };
  if (di_mode === 0) return inode;

  switch (di_mode & S_IFMT) {
    case S_IFIFO:
    case S_IFCHR:
    case S_IFBLK:
    case S_IFSOCK:
      if (di_format !== FMT.DEV) throw bad(`a ${type} whose data fork is not in device format (${di_format})`);
      break;
    default:
      verifyFork(vol, inode, data, type, bad);
  }
  if (attr) {
    verifyFork(vol, inode, attr, type, bad);
  } else {
    if (di_aformat !== 0 && di_aformat !== FMT.EXTENTS) throw bad(`attribute fork format ${di_aformat} without an attribute fork`);
    if (attrExtents) throw bad(`${attrExtents} attribute extents without an attribute fork`);
  }
  return inode;
}

/** xfs_dinode_verify_fork and the shape checks of xfs_iformat_local/extents/btree. */
function verifyFork(vol: XfsVolume, inode: Inode, fork: Fork, type: FileType, bad: (detail: string) => Error): void {
  const size = fork.bytes.length;
  const name = fork.which === 'data' ? 'data fork' : 'attribute fork';
  if (fork.which === 'data') {
    if (type === 'directory' && inode.di_size && inode.di_size <= size && fork.format !== FMT.LOCAL) throw bad('a directory small enough for the inode is not in local format');
    if (type === 'symlink' && inode.di_size <= size && fork.format !== FMT.EXTENTS && fork.format !== FMT.LOCAL) throw bad('a short symlink in btree format');
    if (inode.di_size > size && fork.format === FMT.LOCAL) throw bad(`${inode.di_size} bytes cannot be local in a ${size}-byte fork`);
  }
  const maxExtentsInFork = Math.floor(size / BMBT_REC_LEN);
  switch (fork.format) {
    case FMT.LOCAL:
      if (type === 'file' && fork.which === 'data') throw bad('a regular file in local format');
      if (fork.nextents) throw bad(`a local ${name} with ${fork.nextents} extents`);
      break;
    case FMT.EXTENTS:
      if (fork.nextents > maxExtentsInFork) throw bad(`${fork.nextents} extents do not fit a ${size}-byte ${name}`);
      break;
    case FMT.BTREE: {
      const large = (inode.di_flags2 & DIFLAG2.NREXT64) !== 0;
      const max = fork.which === 'data' ? (large ? MAX_EXTCNT_DATA_FORK_LARGE : MAX_EXTCNT_DATA_FORK_SMALL) : large ? MAX_EXTCNT_ATTR_FORK_LARGE : MAX_EXTCNT_ATTR_FORK_SMALL;
      if (fork.nextents > max) throw bad(`${fork.nextents} extents in the ${name}`);
      if (fork.nextents <= maxExtentsInFork) throw bad(`a btree ${name} with only ${fork.nextents} extents, which fit in the inode`);
      if (fork.nextents > inode.di_nblocks) throw bad(`${fork.nextents} extents but ${inode.di_nblocks} blocks`);
      const level = fork.bytes.readUInt16BE(0);
      const numrecs = fork.bytes.readUInt16BE(2);
      if (numrecs === 0 || BMDR_HEADER_LEN + numrecs * (BMBT_KEY_LEN + BMBT_PTR_LEN) > size) throw bad(`btree root with ${numrecs} records in a ${size}-byte ${name}`);
      if (level === 0 || level > MAX_BMBT_LEVELS) throw bad(`btree root at level ${level}`);
      break;
    }
    default:
      throw bad(`${name} format ${fork.format} is invalid`);
  }
}

/** Device number of a chardev/blockdev inode: the 32-bit xfs_dev_t (major in the high 14 bits) at the start of the data fork. */
export function deviceNumber(inode: Inode): { major: number; minor: number } {
  const dev = inode.data.bytes.readUInt32BE(0);
  return { major: (dev >>> 18) & 0x1ff, minor: dev & 0x3ffff };
}
