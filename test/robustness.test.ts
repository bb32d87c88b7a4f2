/**
 * The bounded slice of the robustness suite inside pnpm test (the whole of
 * it: pnpm test:robustness): e2fsprogs test images of the corpus
 * through df against the kernel's read-only mount (every second one), and every sixth one
 * through ls -lR, each call in a child process with a time and memory
 * budget. No crash, hang, overrun, statfs mismatch, or exact figures for a
 * filesystem the kernel refuses to mount. Known defects are listed with
 * what is wrong; each must still fail that way (when one is fixed, this
 * test says so, and it leaves the list).
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loopMountUnavailable } from './support/kernel.ts';
import { checkImage, corpusRoot, e2fsprogsCases, summarize, unpack, type CaseReport } from './support/robustness.ts';
import { scratchDir } from './support/scratch.ts';

/** Known, not yet fixed: case -> what the suite finds. */
const KNOWN: Record<string, RegExp> = {
  // The kernel's mount leaves 768 fewer blocks free than the bitmaps say (orphan cleanup with quota); not understood yet.
  f_orphquot: /statfs differs in bfree/,
};

describe('robustness: the e2fsprogs corpus against the kernel (bounded slice)', function () {
  this.timeout(1200000);

  it('every image answers or fails clearly, within budget, with the kernel\'s statfs or marked inexact', async function () {
    const root = corpusRoot();
    if (!root) {
      console.log('      no corpus (../shared/corpus/e2fsprogs absent; GUESTLENS_CORPUS points elsewhere): skipped');
      return this.skip();
    }
    const noLoop = await loopMountUnavailable();
    if (noLoop) {
      console.log(`      ${noLoop}: the kernel cannot be the oracle; skipped`);
      return this.skip();
    }
    const cases = e2fsprogsCases(root);
    assert.ok(cases.length >= 50, `only ${cases.length} corpus cases found under ${root}`);
    const dir = scratchDir('robustness');
    const reports: CaseReport[] = [];
    // Every second image (the whole corpus: pnpm test:robustness).
    for (const [i, c] of cases.entries()) {
      if (i % 2 && !KNOWN[c.name]) continue;
      const work = join(dir, c.name);
      mkdirSync(work);
      const image = await unpack(c, work);
      reports.push(...(await checkImage(c.name, image, work, { timeS: 20, memoryMiB: 512 }, { ls: i % 6 === 0 })));
      rmSync(work, { recursive: true, force: true });
    }
    const table = summarize(reports);
    const unexpected = reports.filter((r) => r.failed && !KNOWN[r.name]?.test(r.kernel));
    const fixed = Object.entries(KNOWN).filter(([name, why]) => !reports.some((r) => r.name === name && r.failed && why.test(r.kernel)));
    assert.deepEqual(unexpected.map((r) => `${r.name} ${r.command}: ${r.result.outcome} ${r.kernel} ${r.result.why ?? ''}`), [], table);
    assert.deepEqual(fixed.map(([n]) => n), [], `these known defects no longer fail as listed: take them out of KNOWN\n${table}`);
    // The suite can tell: the corpus holds images the kernel refuses and images it mounts.
    assert.ok(reports.some((r) => r.kernel === 'statfs equal'));
    assert.ok(reports.some((r) => r.result.outcome === 'clear error'));
  });
});
