/**
 * Longer mutation fuzzing of the NTFS driver than the test suite runs.
 *   pnpm exec tsx scripts/fuzz-ntfs.ts [--cases N] [--seed S]
 * Builds the same corpus as packages/inspect/test/filesystems/ntfs/ntfs-fuzz.test.ts
 * (needs root, FUSE and ntfs-3g), prints statistics, and exits 1 with the
 * reproducing seed of every case that failed with anything but a typed
 * NtfsError naming the image.
 */
import { parseArgs } from 'node:util';
import { buildCorpus, runFuzz } from '../packages/inspect/test/filesystems/ntfs/ntfsFuzzer.ts';
import { ntfs3gUnavailable } from '../test/support/ntfs3g.ts';
import { stopAll } from '../test/support/processes.ts';
import { removeScratch } from '../test/support/scratch.ts';

const { values } = parseArgs({ options: { cases: { type: 'string', default: '20000' }, seed: { type: 'string', default: String(Date.now() % 2 ** 31) } } });
const cases = Number(values.cases);
const seed = Number(values.seed);

try {
  const why = await ntfs3gUnavailable();
  if (why) throw new Error(`cannot build the corpus: ${why}`);
  const corpus = await buildCorpus();
  console.log(`corpus: ${corpus.regions.length} regions; seed ${seed}, ${cases} cases`);
  const started = Date.now();
  let failed = 0;
  const chunk = 500;
  for (let done = 0; done < cases; done += chunk) {
    const { failures, stats } = await runFuzz(corpus, Math.min(chunk, cases - done), (seed + done * 7919) >>> 0);
    for (const f of failures) {
      failed++;
      console.log(`FAIL seed ${f.seed} ${f.region}: ${(f.error as Error)?.stack ?? String(f.error)}`);
    }
    const rss = Math.round(process.memoryUsage().rss / 2 ** 20);
    console.log(`${done + stats.cases} cases, ${failed} failures, ${Math.round((Date.now() - started) / 1000)} s, rss ${rss} MiB, errors ${JSON.stringify(stats.errorsByCode)}`);
  }
  process.exitCode = failed ? 1 : 0;
} finally {
  await stopAll();
  removeScratch();
}
