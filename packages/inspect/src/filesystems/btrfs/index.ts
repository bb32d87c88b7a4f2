/**
 * btrfs, read-only. `openBtrfs(source, { subvolume })` gives the Filesystem
 * of one btrfs on a block source (a partition, a logical volume, a disk);
 * `openBtrfsDevices(sources)` one spread over several devices of a guest.
 * `subvolumes()` lists its subvolumes and snapshots.
 */
import type { BlockSource } from '@guestlens/block';
import { BtrfsFilesystem, type BtrfsOpenOptions } from './btrfsFilesystem.ts';

export { BtrfsFilesystem, type BtrfsOpenOptions } from './btrfsFilesystem.ts';
export { BtrfsError, BtrfsCorruptError, BtrfsChecksumError, BtrfsUnsupportedError } from './errors.ts';
export type { BtrfsLimits } from './volume.ts';
export type { BtrfsSpace } from './statfs.ts';

export function openBtrfs(source: BlockSource, options?: BtrfsOpenOptions): Promise<BtrfsFilesystem> {
  return BtrfsFilesystem.open([source], options);
}

export function openBtrfsDevices(sources: BlockSource[], options?: BtrfsOpenOptions): Promise<BtrfsFilesystem> {
  return BtrfsFilesystem.open(sources, options);
}
