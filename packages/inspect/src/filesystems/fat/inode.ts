/**
 * What stat(2) shows for a FAT directory entry, as the Linux vfat driver
 * fills its inodes (fs/fat/inode.c fat_fill_inode and fat_read_root) when
 * mounted as libguestfs mounts it: owner root (uid = gid = 0, the mounting
 * process's), fmask = dmask = 022 (the appliance daemon's umask), so files
 * are -rwxr-xr-x and directories drwxr-xr-x; the read-only attribute takes
 * the write bits off files (not directories: vfat ignores it there unless
 * mounted with rodir). A directory's size is its cluster chain's length and
 * its link count the number of directory entries in it ("." and ".."
 * included; the root has none, so it gets 2 more); st_blocks is the size
 * rounded up to whole clusters. mtime is the write time (2-second steps),
 * ctime equals mtime (Linux 6.x has no separate change time for FAT), atime
 * is the access date at midnight, crtime (statx's btime) the creation time
 * to 10 ms. The root directory has no entry: its times are all the epoch.
 *
 * Inode numbers are the directory entry's position: its byte offset on the
 * volume divided by 32, which is the kernel's own i_pos (what it reports as
 * st_ino when mounted with nfs=nostale_ro); the root is 1 (MSDOS_ROOT_INO).
 * Every entry lies past the boot sector, so no position is 1. They are
 * stable for as long as the entry stays where it is (a rename into another
 * directory slot changes them), and below 2^39.
 */
import type { FileStat, FileType, Timestamp } from '../filesystem.ts';
import { ATTR, DIR_ENTRY_SIZE, DIRENT } from './layout.ts';
import { fatTime } from './time.ts';

export const ROOT_INO = 1;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
/** The mount's fmask and dmask (libguestfs's umask). */
export const FMASK = 0o022;
export const DMASK = 0o022;
const S_IRWXUGO = 0o777;
const S_IWUGO = 0o222;

/** The fields of an 8.3 entry the driver uses. */
export interface ShortEntry {
  name11: Buffer;
  attr: number;
  ntRes: number;
  crtTimeTenth: number;
  crtTime: number;
  crtDate: number;
  lstAccDate: number;
  wrtTime: number;
  wrtDate: number;
  /** First cluster: DIR_FstClusLO, with DIR_FstClusHI on FAT32 only (the kernel ignores HI on FAT12/16). */
  start: number;
  fileSize: number;
}

export function parseShortEntry(raw: Buffer, fat32: boolean): ShortEntry {
  const lo = raw.readUInt16LE(DIRENT.DIR_FstClusLO);
  const hi = fat32 ? raw.readUInt16LE(DIRENT.DIR_FstClusHI) : 0;
  return {
    name11: raw.subarray(DIRENT.DIR_Name, DIRENT.DIR_Name + 11),
    attr: raw[DIRENT.DIR_Attr],
    ntRes: raw[DIRENT.DIR_NTRes],
    crtTimeTenth: raw[DIRENT.DIR_CrtTimeTenth],
    crtTime: raw.readUInt16LE(DIRENT.DIR_CrtTime),
    crtDate: raw.readUInt16LE(DIRENT.DIR_CrtDate),
    lstAccDate: raw.readUInt16LE(DIRENT.DIR_LstAccDate),
    wrtTime: raw.readUInt16LE(DIRENT.DIR_WrtTime),
    wrtDate: raw.readUInt16LE(DIRENT.DIR_WrtDate),
    start: hi * 0x10000 + lo,
    fileSize: raw.readUInt32LE(DIRENT.DIR_FileSize),
  };
}

export function isDirectory(e: ShortEntry): boolean {
  return (e.attr & ATTR.DIRECTORY) !== 0;
}

export function fileTypeOf(e: ShortEntry): FileType {
  return isDirectory(e) ? 'directory' : 'file';
}

/** fat_make_mode with the mount's masks. */
export function modeOf(attr: number): number {
  let mode = S_IRWXUGO;
  if (attr & ATTR.READ_ONLY && !(attr & ATTR.DIRECTORY)) mode &= ~S_IWUGO;
  return attr & ATTR.DIRECTORY ? (mode & ~DMASK) | S_IFDIR : (mode & ~FMASK) | S_IFREG;
}

export function inoOfPosition(position: number): number {
  return position / DIR_ENTRY_SIZE;
}

export function positionOfIno(ino: number): number {
  return ino * DIR_ENTRY_SIZE;
}

/** st_blocks: the size rounded up to whole clusters, in 512-byte units. */
export function blocksOf(size: number, clusterSize: number): number {
  return (Math.ceil(size / clusterSize) * clusterSize) / 512;
}

/** The stat of an entry; `size` and `nlink` are the caller's (a directory's come from its contents). */
export function statOfEntry(ino: number, e: ShortEntry, size: number, nlink: number, clusterSize: number): FileStat {
  const mtime = fatTime(e.wrtTime, e.wrtDate);
  return {
    ino,
    type: fileTypeOf(e),
    mode: modeOf(e.attr),
    nlink,
    uid: 0,
    gid: 0,
    size,
    blocks: blocksOf(size, clusterSize),
    atime: fatTime(0, e.lstAccDate),
    mtime,
    ctime: { ...mtime },
    crtime: fatTime(e.crtTime, e.crtDate, e.crtTimeTenth),
  };
}

const EPOCH: Timestamp = { sec: 0, nsec: 0 };

export function rootStat(size: number, subdirs: number, clusterSize: number): FileStat {
  return {
    ino: ROOT_INO,
    type: 'directory',
    mode: modeOf(ATTR.DIRECTORY),
    nlink: subdirs + 2,
    uid: 0,
    gid: 0,
    size,
    blocks: blocksOf(size, clusterSize),
    atime: { ...EPOCH },
    mtime: { ...EPOCH },
    ctime: { ...EPOCH },
    crtime: { ...EPOCH },
  };
}
