/**
 * readRuns, the one reader of every driver's block map: random maps (holes,
 * runs out of physical order, runs sharing blocks, runs far apart) read the
 * same bytes as reading each run by itself, and a fragmented file costs a
 * few source reads per request, not one per run.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readRuns, type BlockRun } from '../../src/filesystems/runs.ts';
import { MemorySource } from '../../../../test/support/memorySource.ts';
import { Prng } from '../../../../test/support/prng.ts';

const BS = 4096;
const disk = randomBytes(64 * 1024 * 1024);

/** The same bytes, one run at a time: what readRuns must equal. */
function oneByOne(runs: readonly BlockRun[], offset: number, n: number, base: number): Buffer {
  const out = Buffer.alloc(n);
  for (const r of runs) {
    if (r.pblk === undefined) continue;
    const start = r.lblk * BS;
    const from = Math.max(offset, start);
    const to = Math.min(offset + n, start + r.length * BS);
    if (to > from) disk.copy(out, from - offset, base + r.pblk * BS + (from - start), base + r.pblk * BS + (to - start));
  }
  return out;
}

function randomMap(rng: Prng, blocks: number, diskBlocks: number): BlockRun[] {
  const runs: BlockRun[] = [];
  for (let lblk = 0; lblk < blocks; ) {
    const length = 1 + rng.below(rng.below(4) === 0 ? 40 : 3);
    const kind = rng.below(10);
    // Near the previous run (the interleaved case), anywhere, or a block another run already has.
    const prev = runs.findLast((r) => r.pblk !== undefined);
    const pblk = kind === 0 ? undefined : kind < 5 && prev?.pblk !== undefined ? Math.min(diskBlocks - length, prev.pblk + prev.length + rng.below(12)) : kind === 9 && prev?.pblk !== undefined ? prev.pblk : rng.below(diskBlocks - length);
    runs.push({ lblk, length, pblk });
    lblk += length;
  }
  return runs;
}

describe('readRuns: a file from its block map', () => {
  it('random maps read as each run read alone (holes, runs out of physical order, shared blocks, far apart, any window)', async () => {
    const rng = new Prng(20261202);
    for (let c = 0; c < 300; c++) {
      const base = rng.below(3) === 0 ? 0 : rng.below(8) * 512;
      const diskBlocks = Math.floor((disk.length - base) / BS);
      const blocks = 1 + rng.below(600);
      const runs = randomMap(rng, blocks, diskBlocks);
      const offset = rng.below(blocks * BS);
      const n = 1 + rng.below(blocks * BS - offset);
      const source = new MemorySource(disk);
      const ours = await readRuns(source, runs, BS, offset, n, base);
      assert.ok(ours.equals(oneByOne(runs, offset, n, base)), `case ${c}: offset ${offset}, ${n} bytes, ${runs.length} runs`);
    }
  });

  it('a file of single-block extents interleaved with another file\'s blocks costs a few reads per request, not one per extent', async () => {
    // Even blocks where they were first written, odd ones rewritten into a fresh area: 256 extents per MiB.
    const runs: BlockRun[] = [];
    for (let lblk = 0; lblk < 256; lblk++) runs.push({ lblk, length: 1, pblk: lblk % 2 === 0 ? 1000 + lblk : 5000 + (lblk >> 1) });
    const source = new MemorySource(disk);
    const ours = await readRuns(source, runs, BS, 0, 256 * BS);
    assert.ok(ours.equals(oneByOne(runs, 0, 256 * BS, 0)));
    assert.ok(source.reads <= 2, `${source.reads} reads for 256 extents`);
    // Far apart, they are read one by one: a coalesced read never spans more than it must.
    const far = runs.map((r, i) => ({ ...r, pblk: i * 64 }));
    const counted = new MemorySource(disk);
    assert.ok((await readRuns(counted, far, BS, 0, 256 * BS)).equals(oneByOne(far, 0, 256 * BS, 0)));
    assert.equal(counted.reads, 256);
    assert.ok(counted.largestRead <= BS, `largest read ${counted.largestRead}`);
  });
});
