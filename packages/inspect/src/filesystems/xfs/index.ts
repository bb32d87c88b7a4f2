/**
 * XFS (v4 and v5), read-only. `openXfs` gives the Filesystem for a block
 * source holding one XFS filesystem (a partition, a logical volume, a whole
 * disk).
 */
import type { BlockSource } from '@guestlens/block';
import type { Filesystem } from '../filesystem.ts';
import { XfsFilesystem, type XfsOpenOptions } from './xfsFilesystem.ts';

export { XfsFilesystem, type XfsOpenOptions, type XfsMountState } from './xfsFilesystem.ts';
export { XfsError, XfsCorruptError, XfsChecksumError, XfsUnsupportedError } from './errors.ts';
export type { XfsLimits } from './volume.ts';

export async function openXfs(source: BlockSource, opts?: XfsOpenOptions): Promise<Filesystem> {
  return XfsFilesystem.open(source, opts);
}
