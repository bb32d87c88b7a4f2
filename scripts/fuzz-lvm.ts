/**
 * Longer mutation fuzzing of the LVM2 reader than the test suite runs.
 *   pnpm exec tsx scripts/fuzz-lvm.ts [--cases N] [--seed S]
 * Builds the corpus of packages/inspect/test/volumes/lvm/fuzz.test.ts (a VG
 * made with the lvm2 tools: needs root for its loop devices), then runs
 * text cases and disk cases in turn, prints statistics, and exits 1 with the
 * reproducing seed of every case that failed with anything but a typed error.
 */
import { parseArgs } from 'node:util';
import { buildFuzzBase, mutateText, runDiskCase, runTextCase, type TextOutcome } from '../packages/inspect/test/volumes/lvm/lvmFuzzer.ts';
import { lvmUnavailable } from '../test/support/lvm.ts';
import { Prng } from '../test/support/prng.ts';
import { removeScratch } from '../test/support/scratch.ts';

const { values } = parseArgs({ options: { cases: { type: 'string', default: '100000' }, seed: { type: 'string', default: String(Date.now() % 2 ** 31) } } });
const cases = Number(values.cases);
const seed = Number(values.seed);

try {
  const why = await lvmUnavailable();
  if (why) throw new Error(`cannot build the corpus: ${why}`);
  const base = await buildFuzzBase();
  console.log(`corpus: ${base.text.length} bytes of VG text, 2 PVs; seed ${seed}, ${cases} cases`);
  const started = Date.now();
  let failed = 0;
  let listed = 0;
  const outcome: TextOutcome = { refused: 0, mapped: 0, unavailable: 0 };
  const chunk = 2000;
  for (let done = 0; done < cases; done += chunk) {
    const chunkSeed = (seed + done * 7919) >>> 0;
    const p = new Prng(chunkSeed);
    for (let n = 0; n < Math.min(chunk, cases - done); n++) {
      try {
        if (n % 4 === 3) listed += await runDiskCase(base, p);
        else await runTextCase(base, mutateText(p, base.text), outcome);
      } catch (err) {
        failed++;
        console.log(`FAIL chunk seed ${chunkSeed} case ${n}: ${(err as Error)?.stack ?? String(err)}`);
      }
    }
    const rss = Math.round(process.memoryUsage().rss / 2 ** 20);
    console.log(`${Math.min(done + chunk, cases)} cases, ${failed} failures, ${Math.round((Date.now() - started) / 1000)} s, rss ${rss} MiB, ${JSON.stringify(outcome)}, ${listed} LVs listed from disks`);
  }
  process.exitCode = failed ? 1 : 0;
} finally {
  removeScratch();
}
