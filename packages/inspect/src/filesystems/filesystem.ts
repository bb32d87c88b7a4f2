/**
 * What every filesystem driver (ext, xfs, fat, ntfs, btrfs) offers, at inode
 * level. Path resolution (symlinks, "..", loop limits, guest-root
 * confinement) is done once, above the drivers, in guest/pathResolver.ts;
 * drivers only answer questions about inode numbers. Drivers see nothing but
 * a BlockSource.
 *
 * Contracts every driver keeps:
 *  - `..` and `.`: path resolution never asks a driver for them (it keeps the
 *    chain of directories it walked), and `readdir` never returns them.
 *    A driver may answer `lookup(dir, '..')` but nothing relies on it.
 *  - Inode numbers are JS numbers: every value is a safe integer (below 2^53).
 *    A filesystem whose numbers go beyond (XFS inode64 on a huge filesystem,
 *    a btrfs objectid) makes the driver throw UnsafeNumberError (EOVERFLOW),
 *    never round. Drivers without native inode numbers (FAT) make stable
 *    ones from the directory entry's position.
 *  - Errors are the FilesystemError family (./errors.ts), with the structure
 *    and byte offset of any damage.
 *  - `refresh()` re-reads the driver's own metadata; it does not refresh the
 *    source below it (the guest refreshes the image first, once).
 *
 * Optional capabilities (a driver implements them when its format has the
 * concept): extended attributes, the extent map of a file, enumeration of
 * inodes (deleted ones included where the format keeps them), lookup by raw
 * name bytes.
 */
import type { BlockSource } from '@guestlens/block';

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
  /** When a deleted inode was deleted (ext's i_dtime), from `inodes({ deleted: true })`. */
  dtime?: Timestamp;
}

export interface DirEntry {
  /** Raw name bytes decoded as UTF-8 when valid (else Latin-1, see names.ts); `rawName` always holds the bytes. */
  name: string;
  rawName: Buffer;
  ino: number;
  /** From the directory entry when the format stores it, else 'unknown' (stat to learn it). */
  type: FileType;
}

/** One stretch of a file, as FIEMAP describes it. */
export interface FileExtent {
  /** Byte offset in the file. */
  offset: number;
  length: number;
  /** data: bytes on the device; hole: not allocated (zeros); unwritten: allocated, reads as zeros; inline: kept in metadata; compressed: stored compressed. */
  kind: 'data' | 'hole' | 'unwritten' | 'inline' | 'compressed';
  /** Byte offset on the filesystem's block source, for data (and compressed) extents. */
  physical?: number;
}

/** An inode from `inodes()`. */
export interface InodeEntry {
  ino: number;
  /** Deleted but still described on disk (a forensic view; ext: a non-zero dtime). */
  deleted: boolean;
  stat: FileStat;
}

export interface InodeEnumerationOptions {
  /** Include deleted inodes the filesystem still holds (default false). */
  deleted?: boolean;
}

export interface Filesystem {
  /** 'ext2' | 'ext3' | 'ext4' | 'xfs' | 'vfat' | 'ntfs' | 'btrfs' ... as `blkid` names it. */
  readonly type: string;
  readonly label: string | undefined;
  readonly uuid: string | undefined;
  readonly rootIno: number;
  readonly source: BlockSource;
  /**
   * Damage the driver tolerated because the kernel's read-only mount
   * tolerates it too (a group-descriptor checksum mismatch, ...): the answer
   * is the kernel's, and these say what was wrong.
   */
  readonly warnings?: readonly string[];

  statfs(): Promise<StatFs>;
  getattr(ino: number): Promise<FileStat>;
  /** Entries of a directory, without "." and "..", in the filesystem's own order. */
  readdir(ino: number): Promise<DirEntry[]>;
  /** Inode number of `name` in directory `dirIno`, or undefined. Never asked for "." or "..". */
  lookup(dirIno: number, name: string): Promise<number | undefined>;
  /** Up to `length` bytes at `offset` of a regular file; shorter only at end of file. */
  read(ino: number, offset: number, length: number): Promise<Buffer>;
  readlink(ino: number): Promise<string>;
  /** Drop cached metadata and read it again: the image below changed (tail mode). Does not refresh `source`. */
  refresh(): Promise<void>;

  // ---- optional capabilities ----------------------------------------------

  /** Names of the extended attributes of an inode ("user.x", "security.selinux", NTFS streams as "ntfs.stream.NAME"...). */
  listxattr?(ino: number): Promise<string[]>;
  /** The value of one extended attribute; FilesystemError ENODATA when there is none by that name. */
  getxattr?(ino: number, name: string): Promise<Buffer>;
  /**
   * The extents of a regular file covering [offset, offset + length) (default:
   * the whole file), in order, holes included; block-granular as FIEMAP reports
   * them (the last one may run past the end of the file to the end of its block).
   */
  extents?(ino: number, offset?: number, length?: number): Promise<FileExtent[]>;
  /** Every inode in use (and with `deleted`, those the filesystem still describes), in inode order. */
  inodes?(options?: InodeEnumerationOptions): AsyncIterable<InodeEntry>;
  /** `lookup` by the name's exact bytes (for names that are not valid UTF-8). */
  lookupRaw?(dirIno: number, name: Buffer): Promise<number | undefined>;
  /** The subvolumes of a filesystem that has them (btrfs), snapshots included, in id order; the top level is not one. */
  subvolumes?(): Promise<Subvolume[]>;
}

/** A subvolume (or snapshot) from `subvolumes()`. */
export interface Subvolume {
  /** The subvolume id (btrfs: its tree's objectid, 256 and up). */
  id: number;
  /** Path from the top level, as `btrfs subvolume list` prints it: "root", "home", "snapshots/1/snapshot". */
  path: string;
  /** The subvolume (or 5, the top level) it is in. */
  parentId: number;
  /** Made as a snapshot of another subvolume. */
  isSnapshot: boolean;
  readOnly: boolean;
  /** What a mount without subvol=/subvolid= shows. */
  isDefault: boolean;
}

/** How a driver is opened. */
export interface FilesystemOpenOptions {
  /** The image may be written while we read (a running guest): damage is reported as retryable. */
  live?: boolean;
  /** Bounds on what the driver reads and caches (each driver documents its own). */
  limits?: Record<string, number>;
  /**
   * Filesystems with subvolumes (btrfs): which one to show, as mount's
   * subvol=PATH (a string, from the top level) or subvolid=ID (a number);
   * default: the filesystem's default subvolume. Other drivers ignore it.
   */
  subvolume?: string | number;
}
