/**
 * The bounded slice of the robustness suite inside pnpm test (the whole of
 * it: pnpm test:robustness): e2fsprogs test images of the corpus
 * through df against the kernel's read-only mount (every third one), and every sixth one
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
import { runGenerated, type DamageCase } from './support/damage/index.ts';
import { checkImage, corpusRoot, e2fsprogsCases, summarize, summarizeByReader, unpack, type CaseReport } from './support/robustness.ts';
import { scratchDir } from './support/scratch.ts';
import { KNOWN, judge } from './support/robustnessKnown.ts';


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
      if (i % 3 && !KNOWN[c.name]) continue;
      const work = join(dir, c.name);
      mkdirSync(work);
      const image = await unpack(c, work);
      reports.push(...(await checkImage(c.name, image, work, { timeS: 20, memoryMiB: 512 }, { ls: i % 6 === 0 })));
      rmSync(work, { recursive: true, force: true });
    }
    const table = summarize(reports);
    const { unexpected, fixed } = judge(reports);
    assert.deepEqual(unexpected.map((r) => `${r.name} ${r.command}: ${r.result.outcome} ${r.kernel} ${r.result.why ?? ''}`), [], table);
    assert.deepEqual(fixed, [], `these known defects no longer fail as listed: take them out of KNOWN (test/support/robustnessKnown.ts)\n${table}`);
    // The suite can tell: the corpus holds images the kernel refuses and images it mounts.
    assert.ok(reports.some((r) => r.kernel === 'statfs equal'));
    assert.ok(reports.some((r) => r.result.outcome === 'clear error'));
  });
});


/**
 * The sample of the generated corpus inside pnpm test: each reader's base and,
 * per reader and technique, the case in the middle of its list (the same
 * cases every run), plus every known defect. The whole corpus:
 * pnpm test:robustness --corpus generated.
 */
function sampled(c: DamageCase, i: number, all: DamageCase[]): boolean {
  if (KNOWN[c.name]) return true;
  const same = all.filter((d) => d.technique === c.technique);
  return same[Math.floor(same.length / 2)] === c || (c.technique === 'edit' && same[Math.floor(same.length / 5)] === c);
}

describe('robustness: the generated-damage corpus against the kernel (bounded sample)', function () {
  this.timeout(600000);

  it('damaged ext4, XFS, btrfs, NTFS, FAT and qcow2/vmdk/vhdx images: answers or clear errors within budget, the kernel\'s statfs or marked inexact', async function () {
    const noLoop = await loopMountUnavailable();
    if (noLoop) {
      console.log(`      ${noLoop}: the bases cannot be filled nor the kernel asked; skipped`);
      return this.skip();
    }
    const run = await runGenerated(scratchDir('robustness-generated'), { select: sampled, budget: { timeS: 20, memoryMiB: 512 } });
    for (const s of run.skipped) console.log(`      reader skipped: ${s}`);
    const reports = run.reports;
    const table = `${summarize(reports, { all: false })}\n\n${summarizeByReader(reports)}`;
    const { unexpected, fixed } = judge(reports);
    assert.deepEqual(unexpected.map((r) => `${r.name} ${r.command}: ${r.result.outcome} ${r.kernel} ${r.result.why ?? ''}`), [], table);
    assert.deepEqual(fixed, [], `these known defects no longer fail as listed: take them out of KNOWN (test/support/robustnessKnown.ts)\n${table}`);
    // Each base answers with the kernel's figures where the kernel mounts it; damage reaches both sides.
    for (const r of reports.filter((r) => r.technique === 'base' && r.command === 'df')) assert.ok(['exact = kernel', 'answered, no oracle'].includes(r.klass), `${r.name}: ${r.klass} ${r.kernel}\n${table}`);
    assert.ok(reports.some((r) => r.klass === 'clear error'));
    assert.ok(reports.some((r) => r.technique !== 'base' && r.klass === 'exact = kernel'));
  });
});
