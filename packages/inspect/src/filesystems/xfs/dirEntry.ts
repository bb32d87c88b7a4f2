/**
 * What the directory formats have in common: an entry as read from disk
 * (raw name bytes, a 64-bit inode number, the ftype byte), the size of an
 * entry in a data block, which inode numbers an entry may point at
 * (xfs_verify_dir_ino: inside the filesystem and not one of the superblock's
 * own metadata inodes), and the directory geometry.
 */
import type { FileType } from '../filesystem.ts';
import { DIR3_FT, XFS_DIR2_DATA_ALIGN, XFS_DIR2_FREE_OFFSET, XFS_DIR2_LEAF_OFFSET } from './layout.ts';
import type { XfsVolume } from './volume.ts';

export interface RawDirEntry {
  name: Buffer;
  ino: bigint;
  ftype: number;
  /** Byte offset of the entry in its data block (block and leaf/node forms). */
  offset?: number;
}

/** Bytes of a data-block entry with a name of `namelen` bytes: inumber, namelen, name, [ftype], tag, rounded to 8. */
export function dataEntrySize(vol: XfsVolume, namelen: number): number {
  const len = 8 + 1 + namelen + 2 + (vol.sb.hasFtype ? 1 : 0);
  return Math.ceil(len / XFS_DIR2_DATA_ALIGN) * XFS_DIR2_DATA_ALIGN;
}

/** Whether a directory entry may point at `ino` (xfs_verify_dir_ino): a valid inode number and not one of the superblock's metadata inodes. */
export function validDirIno(vol: XfsVolume, ino: bigint): boolean {
  const sb = vol.sb;
  if (!vol.validIno(ino)) return false;
  return ino !== sb.sb_rbmino && ino !== sb.sb_rsumino && !(ino !== 0n && (ino === sb.sb_uquotino || ino === sb.sb_gquotino || ino === sb.sb_pquotino));
}

export function fileTypeOfFtype(ftype: number): FileType {
  switch (ftype) {
    case DIR3_FT.REG_FILE: return 'file';
    case DIR3_FT.DIR: return 'directory';
    case DIR3_FT.CHRDEV: return 'chardev';
    case DIR3_FT.BLKDEV: return 'blockdev';
    case DIR3_FT.FIFO: return 'fifo';
    case DIR3_FT.SOCK: return 'socket';
    case DIR3_FT.SYMLINK: return 'symlink';
    default: return 'unknown';
  }
}

/** Where the parts of a directory's block address space start, in filesystem blocks. */
export interface DirGeometry {
  /** Filesystem blocks per directory block. */
  fsbCount: number;
  /** Bytes per directory block. */
  blockSize: number;
  /** First block of the leaf/node space (32 GiB into the directory). */
  leafBlk: number;
  /** First block of the free-index space (64 GiB into the directory). */
  freeBlk: number;
}

export function dirGeometry(vol: XfsVolume): DirGeometry {
  return {
    fsbCount: 2 ** vol.sb.sb_dirblklog,
    blockSize: vol.sb.dirBlockSize,
    leafBlk: XFS_DIR2_LEAF_OFFSET / vol.blockSize,
    freeBlk: XFS_DIR2_FREE_OFFSET / vol.blockSize,
  };
}
