/**
 * ext2/3/4, read-only. `openExt` gives the Filesystem for a block source
 * holding one ext filesystem (a partition, a logical volume, a whole disk);
 * `isExtSuperblock` tells whether the 1024 bytes at offset 1024 look like one.
 */
import type { BlockSource } from '@guestlens/block';
import type { Filesystem } from '../filesystem.ts';
import { ExtFilesystem, type ExtOpenOptions } from './extFilesystem.ts';

export { isExtSuperblock, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE } from './superblock.ts';
export { ExtFilesystem, type ExtOpenOptions, type ExtMountState } from './extFilesystem.ts';
export { ExtError, ExtCorruptError, ExtChecksumError, ExtUnsupportedError, type ExtErrorCode } from './errors.ts';
export type { ExtLimits } from './volume.ts';

export async function openExt(source: BlockSource, opts?: ExtOpenOptions): Promise<Filesystem> {
  return ExtFilesystem.open(source, opts);
}
