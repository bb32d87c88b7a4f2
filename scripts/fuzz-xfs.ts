/**
 * Longer mutation fuzzing of the XFS driver than the test suite runs.
 *   pnpm exec tsx scripts/fuzz-xfs.ts [--cases N] [--seed S] [--kinds 'log record,inode']
 * Builds the same corpus as packages/inspect/test/filesystems/xfs/xfs-fuzz.test.ts
 * (v5 images are filled through a loop mount when this runs as root with loop
 * devices, else by prototype files), prints statistics, and exits 1 with the
 * reproducing seed of every case that failed with anything but a typed error.
 */
import { parseArgs } from 'node:util';
import { buildFuzzImages, runFuzz, type RegionKind } from '../packages/inspect/test/filesystems/xfs/xfsFuzzer.ts';
import { loopMountUnavailable, unmountAll } from '../test/support/kernel.ts';
import { removeScratch } from '../test/support/scratch.ts';

const { values } = parseArgs({ options: { cases: { type: 'string', default: '50000' }, seed: { type: 'string', default: String(Date.now() % 2 ** 31) }, kinds: { type: 'string' } } });
const kinds = values.kinds ? (values.kinds.split(',').map((k) => k.trim()) as RegionKind[]) : undefined;
const cases = Number(values.cases);
const seed = Number(values.seed);

try {
  const noLoop = await loopMountUnavailable();
  if (noLoop) console.log(`no loop mounts (${noLoop}): v5 images filled by prototype files`);
  const images = await buildFuzzImages({ kernel: !noLoop });
  console.log(`corpus: ${images.map((i) => `${i.name} (${i.regions.length} regions)`).join(', ')}; seed ${seed}, ${cases} cases`);
  const started = Date.now();
  let failed = 0;
  const chunk = 1000;
  for (let done = 0; done < cases; done += chunk) {
    const { failures, stats } = await runFuzz(images, Math.min(chunk, cases - done), (seed + done * 7919) >>> 0, kinds);
    for (const f of failures) {
      failed++;
      console.log(`FAIL ${f.image} seed ${f.seed} ${f.region}: ${(f.error as Error)?.stack ?? String(f.error)}`);
    }
    const rss = Math.round(process.memoryUsage().rss / 2 ** 20);
    console.log(`${done + stats.cases} cases, ${failed} failures, ${Math.round((Date.now() - started) / 1000)} s, rss ${rss} MiB, errors ${JSON.stringify(stats.errorsByCode)}`);
  }
  process.exitCode = failed ? 1 : 0;
} finally {
  await unmountAll();
  removeScratch();
}
