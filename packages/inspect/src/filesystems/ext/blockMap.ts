/**
 * The ext2/ext3 block map: twelve direct pointers, then single, double and
 * triple indirect blocks of 32-bit pointers. A zero pointer is a hole (the
 * whole subtree below it). Depth is fixed by the format, so no loops; each
 * pointer is checked to lie inside the filesystem.
 */
import type { Inode } from './inode.ts';
import type { BlockRun } from './mapping.ts';
import type { ExtVolume } from './volume.ts';

const DIRECT = 12;

/** Runs for logical blocks [lblk, lblk + count) of an indirect-mapped inode (holes omitted). */
export async function mapIndirect(vol: ExtVolume, inode: Inode, lblk: number, count: number): Promise<BlockRun[]> {
  const perBlock = vol.blockSize / 4;
  const out: BlockRun[] = [];
  const end = lblk + count;
  // Logical start and span of the subtree behind i_block[0..14].
  let base = 0;
  const regions: { slot: number; level: number; span: number }[] = [];
  for (let i = 0; i < DIRECT; i++) regions.push({ slot: i, level: 0, span: 1 });
  regions.push({ slot: 12, level: 1, span: perBlock });
  regions.push({ slot: 13, level: 2, span: perBlock ** 2 });
  regions.push({ slot: 14, level: 3, span: perBlock ** 3 });
  for (const r of regions) {
    const rStart = base;
    base += r.span;
    if (rStart >= end) break;
    if (base <= lblk) continue;
    const ptr = inode.i_block.readUInt32LE(r.slot * 4);
    await walk(vol, inode, ptr, r.level, rStart, perBlock, lblk, end, out, `block pointer ${r.slot}`);
  }
  return out;
}

async function walk(
  vol: ExtVolume,
  inode: Inode,
  ptr: number,
  level: number,
  base: number,
  perBlock: number,
  start: number,
  end: number,
  out: BlockRun[],
  from: string,
): Promise<void> {
  if (ptr === 0) return;
  if (!vol.validRange(ptr)) {
    throw vol.corrupt(`block map of inode ${inode.ino}`, undefined, `${from} points at block ${ptr}, outside the filesystem`);
  }
  if (level === 0) {
    const prev = out[out.length - 1];
    if (prev && prev.lblk + prev.length === base && prev.pblk !== undefined && prev.pblk + prev.length === ptr) prev.length++;
    else out.push({ lblk: base, length: 1, pblk: ptr });
    return;
  }
  const span = perBlock ** (level - 1);
  const data = await vol.cache.read(ptr);
  const first = Math.max(0, Math.floor((start - base) / span));
  const last = Math.min(perBlock - 1, Math.floor((end - 1 - base) / span));
  for (let i = first; i <= last; i++) {
    const child = data.readUInt32LE(i * 4);
    if (child === 0) continue;
    await walk(vol, inode, child, level - 1, base + i * span, perBlock, start, end, out, `indirect block ${ptr} entry ${i}`);
  }
}
