/**
 * Logical-to-physical block mapping of a file, whichever way the inode stores
 * it (extent tree or indirect blocks). A run is a stretch of logical blocks
 * that is either one contiguous physical range or reads as zeros (a hole or an
 * unwritten extent).
 */
import { mapExtents } from './extentTree.ts';
import { mapIndirect } from './blockMap.ts';
import { INODE_FLAGS, type Inode } from './inode.ts';
import type { ExtVolume } from './volume.ts';
import { fillAndMergeRuns, type BlockRun } from '../runs.ts';

export type { BlockRun } from '../runs.ts';

/** Runs covering logical blocks [lblk, lblk + count), in order, without gaps. */
export async function mapBlocks(vol: ExtVolume, inode: Inode, lblk: number, count: number): Promise<BlockRun[]> {
  if (count <= 0) return [];
  const runs = inode.i_flags & INODE_FLAGS.EXTENTS ? await mapExtents(vol, inode, lblk, count) : await mapIndirect(vol, inode, lblk, count);
  return fillAndMergeRuns(runs, lblk, count);
}
