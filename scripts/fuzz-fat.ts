/**
 * Longer mutation fuzzing of the FAT driver than the test suite runs.
 *   pnpm exec tsx scripts/fuzz-fat.ts [--cases N] [--seed S]
 * Builds the same corpus as packages/inspect/test/filesystems/fat/fat-hostile.test.ts
 * (FAT12, FAT16 and FAT32 volumes made with mkfs.vfat and mtools), prints
 * statistics, and exits 1 with the reproducing seed of every case that
 * failed with anything but a typed FilesystemError.
 */
import { parseArgs } from 'node:util';
import { buildFuzzImages, runFuzz } from '../packages/inspect/test/filesystems/fat/fatFuzzer.ts';
import { removeScratch } from '../test/support/scratch.ts';

const { values } = parseArgs({ options: { cases: { type: 'string', default: '100000' }, seed: { type: 'string', default: String(Date.now() % 2 ** 31) } } });
const cases = Number(values.cases);
const seed = Number(values.seed);

try {
  const images = await buildFuzzImages();
  console.log(`corpus: ${images.map((i) => `${i.name} (${i.regions.length} regions)`).join(', ')}; seed ${seed}, ${cases} cases`);
  const started = Date.now();
  let failed = 0;
  const chunk = 2000;
  for (let done = 0; done < cases; done += chunk) {
    const { failures, stats } = await runFuzz(images, Math.min(chunk, cases - done), (seed + done * 7919) >>> 0);
    for (const f of failures) {
      failed++;
      console.log(`FAIL ${f.image} seed ${f.seed} ${f.region}: ${(f.error as Error)?.stack ?? String(f.error)}`);
    }
    const rss = Math.round(process.memoryUsage().rss / 2 ** 20);
    console.log(`${done + stats.cases} cases, ${failed} failures, ${Math.round((Date.now() - started) / 1000)} s, rss ${rss} MiB, errors ${JSON.stringify(stats.errorsByCode)}`);
  }
  process.exitCode = failed ? 1 : 0;
} finally {
  removeScratch();
}
