/**
 * pnpm test:robustness: every image of the corpus (e2fsprogs's test images
 * in ../shared/corpus, or GUESTLENS_CORPUS) through df (against the kernel)
 * and ls -lR, each call with a time and memory budget
 * (GUESTLENS_ROBUSTNESS_TIME_S, default 20; GUESTLENS_ROBUSTNESS_MEMORY_MIB,
 * default 512). Prints the table; exits 1 on any crash, hang, budget overrun
 * or statfs mismatch. `pnpm test` runs a bounded slice (test/robustness.test.ts);
 * the fuzz targets' long runs: GUESTLENS_FUZZ_CASES=N (see the README).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkImage, corpusRoot, e2fsprogsCases, summarize, unpack, type CaseReport } from '../test/support/robustness.ts';

const root = corpusRoot();
if (!root) {
  console.log('no corpus: ../shared/corpus/e2fsprogs is absent (set GUESTLENS_CORPUS to a directory holding e2fsprogs/CASE/image.gz); nothing to run');
  process.exit(0);
}
const budget = { timeS: Number(process.env.GUESTLENS_ROBUSTNESS_TIME_S ?? 20), memoryMiB: Number(process.env.GUESTLENS_ROBUSTNESS_MEMORY_MIB ?? 512) };
const scratch = mkdtempSync(join(tmpdir(), 'gltest-robustness-'));
const reports: CaseReport[] = [];
try {
  const only = process.argv.slice(2);
  for (const c of e2fsprogsCases(root).filter((c) => only.length === 0 || only.includes(c.name))) {
    const image = await unpack(c, scratch);
    reports.push(...(await checkImage(c.name, image, scratch, budget)));
    rmSync(image, { force: true });
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
console.log(summarize(reports));
process.exit(reports.some((r) => r.failed) ? 1 : 0);
