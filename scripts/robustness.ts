/**
 * pnpm test:robustness [--corpus e2fsprogs,generated] [--reader ext4,xfs-v5,...] [--all-rows] [NAME...]:
 * every image of the chosen corpora through df (against the kernel where it
 * mounts the image) and ls -lR, each call with a time and memory budget
 * (GUESTLENS_ROBUSTNESS_TIME_S, default 20; GUESTLENS_ROBUSTNESS_MEMORY_MIB,
 * default 512). The corpora: e2fsprogs's test images in ../shared/corpus (or
 * GUESTLENS_CORPUS; skipped with the reason when absent) and the generated
 * damage of test/support/damage (needs only the tools). Prints the failing
 * rows (all rows with --all-rows) and the table per reader; exits 1 on any
 * crash, hang, budget overrun or statfs mismatch not listed as known
 * (test/support/robustnessKnown.ts), or a listed one that is fixed. NAME... keeps only cases
 * whose name contains one of them. `pnpm test` runs a bounded slice
 * (test/robustness.test.ts); the fuzz targets' long runs:
 * GUESTLENS_FUZZ_CASES=N (see the README).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { READERS, runGenerated } from '../test/support/damage/index.ts';
import { checkImage, corpusRoot, e2fsprogsCases, summarize, summarizeByReader, unpack, type CaseReport } from '../test/support/robustness.ts';
import { removeScratch, scratchDir } from '../test/support/scratch.ts';
import { judge } from '../test/support/robustnessKnown.ts';
import { unmountAll } from '../test/support/kernel.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { corpus: { type: 'string', default: 'e2fsprogs,generated' }, reader: { type: 'string' }, 'all-rows': { type: 'boolean', default: false } },
});
const corpora = values.corpus!.split(',');
for (const c of corpora) if (!['e2fsprogs', 'generated'].includes(c)) throw new Error(`--corpus: no corpus ${c} (e2fsprogs, generated)`);
const readers = values.reader?.split(',') ?? Object.keys(READERS);
const budget = { timeS: Number(process.env.GUESTLENS_ROBUSTNESS_TIME_S ?? 20), memoryMiB: Number(process.env.GUESTLENS_ROBUSTNESS_MEMORY_MIB ?? 512) };
const started = Date.now();
const reports: CaseReport[] = [];
try {
  if (corpora.includes('e2fsprogs')) {
    const root = corpusRoot();
    if (!root) console.log('e2fsprogs corpus skipped: ../shared/corpus/e2fsprogs is absent (set GUESTLENS_CORPUS to a directory holding e2fsprogs/CASE/image.gz)');
    else {
      const scratch = scratchDir('robustness-e2fsprogs');
      for (const c of e2fsprogsCases(root).filter((c) => positionals.length === 0 || positionals.some((p) => c.name.includes(p)))) {
        const work = join(scratch, c.name);
        mkdirSync(work);
        const image = await unpack(c, work);
        reports.push(...(await checkImage(c.name, image, work, budget)));
      }
    }
  }
  if (corpora.includes('generated')) {
    const run = await runGenerated(scratchDir('robustness-generated'), { readers, budget, only: positionals, log: process.env.GUESTLENS_ROBUSTNESS_VERBOSE ? (l) => console.error(l) : undefined });
    for (const s of run.skipped) console.log(`generated corpus: reader skipped: ${s}`);
    reports.push(...run.reports);
  }
} finally {
  await unmountAll();
  removeScratch();
}
console.log(summarize(reports, { all: values['all-rows'] }));
console.log('');
console.log(summarizeByReader(reports));
console.log(`\nwall time ${((Date.now() - started) / 1000).toFixed(0)} s`);
const { unexpected, known, fixed } = judge(reports);
for (const r of known) console.log(`known, not fixed yet (test/support/robustnessKnown.ts): ${r.name} ${r.command}: ${r.kernel}`);
for (const name of fixed) console.log(`fixed: ${name} no longer fails as listed: take it out of KNOWN (test/support/robustnessKnown.ts)`);
process.exit(unexpected.length || fixed.length ? 1 : 0);
