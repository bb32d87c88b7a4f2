/**
 * What every filesystem driver (ext, xfs, fat, ...) offers, at inode level.
 * Path resolution (symlinks, "..", loop limits, guest-root confinement) is
 * done once, above the drivers, in guest/pathResolver.ts; drivers only answer
 * questions about inode numbers. Drivers see nothing but a BlockSource.
 */
import type { BlockSource } from '@guestlens/qcow2-js';

export type FileType = 'file' | 'directory' | 'symlink' | 'chardev' | 'blockdev' | 'fifo' | 'socket' | 'unknown';

/** The numbers statvfs(2) returns, as the guest kernel would compute them for a read-only mount. */
export interface StatFs {
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  /** Maximum filename length. */
  namelen: number;
  /** False when the figure depends on mount-time work we did not model (journal replay, orphan cleanup...). */
  exact: boolean;
  /** Why `exact` is false. */
  reason?: string;
}

export interface Timestamp {
  /** Seconds since the epoch (may be negative). */
  sec: number;
  nsec: number;
}

export interface FileStat {
  ino: number;
  type: FileType;
  /** Full st_mode: type bits and permission bits. */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  /** 512-byte blocks allocated, as st_blocks. */
  blocks: number;
  atime: Timestamp;
  mtime: Timestamp;
  ctime: Timestamp;
  crtime?: Timestamp;
  /** Device number for chardev/blockdev. */
  rdev?: { major: number; minor: number };
}

export interface DirEntry {
  /** Raw name bytes decoded as UTF-8 when valid; `rawName` always holds the bytes. */
  name: string;
  rawName: Buffer;
  ino: number;
  /** From the directory entry when the format stores it, else 'unknown' (stat to learn it). */
  type: FileType;
}

export interface Filesystem {
  /** 'ext2' | 'ext3' | 'ext4' | 'xfs' | 'vfat' | 'ntfs' | 'btrfs' ... as `blkid` names it. */
  readonly type: string;
  readonly label: string | undefined;
  readonly uuid: string | undefined;
  readonly rootIno: number;
  readonly source: BlockSource;

  statfs(): Promise<StatFs>;
  getattr(ino: number): Promise<FileStat>;
  /** Entries of a directory, without "." and "..". */
  readdir(ino: number): Promise<DirEntry[]>;
  /** Inode number of `name` in directory `dirIno`, or undefined. ".." must work (the root's ".." is the root). */
  lookup(dirIno: number, name: string): Promise<number | undefined>;
  /** Up to `length` bytes at `offset` of a regular file; shorter only at end of file. */
  read(ino: number, offset: number, length: number): Promise<Buffer>;
  readlink(ino: number): Promise<string>;
  /** Drop cached metadata: the image below changed (tail mode). */
  refresh(): Promise<void>;
}
