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

export interface BlockRun {
  lblk: number;
  length: number;
  /** First physical block, or undefined when the run reads as zeros. */
  pblk: number | undefined;
}

/** Runs covering logical blocks [lblk, lblk + count), in order, without gaps. */
export async function mapBlocks(vol: ExtVolume, inode: Inode, lblk: number, count: number): Promise<BlockRun[]> {
  if (count <= 0) return [];
  const runs = inode.i_flags & INODE_FLAGS.EXTENTS ? await mapExtents(vol, inode, lblk, count) : await mapIndirect(vol, inode, lblk, count);
  return fillAndMerge(runs, lblk, count);
}

/** Sort-free merge: inputs arrive in logical order; fill gaps with holes and join neighbours. */
function fillAndMerge(runs: BlockRun[], lblk: number, count: number): BlockRun[] {
  const out: BlockRun[] = [];
  let pos = lblk;
  const end = lblk + count;
  const push = (r: BlockRun) => {
    const prev = out[out.length - 1];
    if (prev && prev.lblk + prev.length === r.lblk) {
      if (prev.pblk === undefined && r.pblk === undefined) {
        prev.length += r.length;
        return;
      }
      if (prev.pblk !== undefined && r.pblk !== undefined && prev.pblk + prev.length === r.pblk) {
        prev.length += r.length;
        return;
      }
    }
    out.push({ ...r });
  };
  for (const r of runs) {
    const s = Math.max(r.lblk, pos);
    const e = Math.min(r.lblk + r.length, end);
    if (e <= s) continue;
    if (s > pos) push({ lblk: pos, length: s - pos, pblk: undefined });
    push({ lblk: s, length: e - s, pblk: r.pblk === undefined ? undefined : r.pblk + (s - r.lblk) });
    pos = e;
  }
  if (pos < end) push({ lblk: pos, length: end - pos, pblk: undefined });
  return out;
}
