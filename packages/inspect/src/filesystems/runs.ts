/**
 * A file's bytes from its block map: runs of logical blocks that are either
 * one contiguous physical range or a hole (zeros). Every driver maps a file
 * to runs its own way (extent trees, block maps, FAT chains, NTFS runlists,
 * btrfs extent items); reading the runs is the same for all of them.
 */
import { readInto, type BlockSource } from '@guestlens/block';

export interface BlockRun {
  /** First logical block of the file. */
  lblk: number;
  length: number;
  /** First physical block, or undefined when the run reads as zeros (a hole, an unwritten extent). */
  pblk: number | undefined;
  /** The run is allocated but reads as zeros (an unwritten/preallocated extent); only with pblk undefined. */
  unwritten?: boolean;
  /** Where an unwritten run is allocated (it reads as zeros, but FIEMAP and forensics show its blocks). */
  allocatedPblk?: number;
}

/**
 * Pieces of a fragmented file that lie this close on the source are read
 * with one call, the bytes between them read and dropped: a call through
 * the block stack costs about as much as reading tens of KiB, and a file of
 * single-block extents (written interleaved with another, or into freed
 * blocks) would otherwise cost one call per block.
 */
const COALESCE_GAP = 32 * 1024;
/** A coalesced read never spans more than this (the buffer it needs). */
const COALESCE_SPAN = 4 * 1024 * 1024;

interface Piece {
  /** Where in the output. */
  at: number;
  /** Where on the source. */
  from: number;
  length: number;
}

/**
 * Bytes [offset, offset + n) of a file from `runs` (which must cover the
 * blocks of that range), read from `source` in blocks of `blockSize`; holes
 * read as zeros. `physicalBase` is the byte offset of block 0 on the source.
 */
export async function readRuns(source: BlockSource, runs: readonly BlockRun[], blockSize: number, offset: number, n: number, physicalBase = 0): Promise<Buffer> {
  const out = Buffer.alloc(n);
  const pieces: Piece[] = [];
  for (const run of runs) {
    if (run.pblk === undefined) continue;
    const runStart = run.lblk * blockSize;
    const from = Math.max(offset, runStart);
    const to = Math.min(offset + n, runStart + run.length * blockSize);
    if (to <= from) continue;
    pieces.push({ at: from - offset, from: physicalBase + run.pblk * blockSize + (from - runStart), length: to - from });
  }
  if (pieces.length === 1) {
    await readInto(source, out, pieces[0].at, pieces[0].from, pieces[0].length);
    return out;
  }
  pieces.sort((a, b) => a.from - b.from);
  for (let i = 0; i < pieces.length; ) {
    const first = pieces[i];
    let end = first.from + first.length;
    let j = i + 1;
    while (j < pieces.length) {
      const next = pieces[j];
      const nextEnd = Math.max(end, next.from + next.length);
      if (next.from - end > COALESCE_GAP || nextEnd - first.from > COALESCE_SPAN) break;
      end = nextEnd;
      j++;
    }
    if (j === i + 1) {
      await readInto(source, out, first.at, first.from, first.length);
    } else {
      const span = await source.read(first.from, end - first.from);
      for (let k = i; k < j; k++) {
        const p = pieces[k];
        span.copy(out, p.at, p.from - first.from, p.from - first.from + p.length);
      }
    }
    i = j;
  }
  return out;
}

/** Join neighbouring runs that continue each other (both holes, or physically contiguous) and fill gaps in [lblk, lblk + count) with holes. */
export function fillAndMergeRuns(runs: readonly BlockRun[], lblk: number, count: number): BlockRun[] {
  const out: BlockRun[] = [];
  let pos = lblk;
  const end = lblk + count;
  const push = (r: BlockRun) => {
    const prev = out[out.length - 1];
    if (prev && prev.lblk + prev.length === r.lblk) {
      if (prev.pblk === undefined && r.pblk === undefined && !prev.unwritten && !r.unwritten) {
        prev.length += r.length;
        return;
      }
      if (prev.unwritten && r.unwritten && prev.allocatedPblk !== undefined && prev.allocatedPblk + prev.length === r.allocatedPblk) {
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
    const moved = s - r.lblk;
    push({
      lblk: s,
      length: e - s,
      pblk: r.pblk === undefined ? undefined : r.pblk + moved,
      ...(r.unwritten ? { unwritten: true, ...(r.allocatedPblk === undefined ? {} : { allocatedPblk: r.allocatedPblk + moved }) } : {}),
    });
    pos = e;
  }
  if (pos < end) push({ lblk: pos, length: end - pos, pblk: undefined });
  return out;
}
