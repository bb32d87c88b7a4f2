/**
 * statfs as the Linux vfat driver computes it (fs/fat/inode.c fat_statfs;
 * see shared/spec/statfs.md): the block size is the cluster size, blocks the
 * data clusters (capped by what one FAT can describe), free and available
 * the FAT entries that are 0, counted by scanning the FAT (FSInfo's free
 * count is read at mount but not trusted without -o usefree), no inode
 * counts, and a maximum name length of 255 UTF-16 characters at up to 6 bytes
 * each in the I/O charset (FAT_LFN_LEN * NLS_MAX_CHARSET_SIZE = 1530).
 *
 * fsck.fat -n -v agrees on clean volumes; where they differ: fsck.fat counts
 * as free every cluster no file owns (a lost chain is free to fsck.fat, used
 * to the kernel, until fsck reclaims it) and refuses a FAT too small for the
 * cluster count, where the kernel caps the count.
 */
import type { StatFs } from '../filesystem.ts';
import type { KernelGeometry } from './layout.ts';

export const FAT_LFN_LEN = 255;
export const NLS_MAX_CHARSET_SIZE = 6;

export function computeStatfs(g: KernelGeometry, freeClusters: number): StatFs {
  return {
    bsize: g.clusterSize,
    blocks: g.totalClusters,
    bfree: freeClusters,
    bavail: freeClusters,
    files: 0,
    ffree: 0,
    namelen: FAT_LFN_LEN * NLS_MAX_CHARSET_SIZE,
    exact: true,
  };
}
