/**
 * One target's run, in a worker thread: coverage starts before the target
 * (and the parsers it imports) is loaded, the seeds are built, the loop
 * runs, and every case is mirrored into shared memory first, so that the
 * supervisor can write out a case that hangs or exhausts the heap.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { CoverageFeedback } from './coverage.ts';
import { fuzzLoop, type LoopOptions } from './loop.ts';
import { CURRENT, type WorkerData, type WorkerMessage } from './protocol.ts';

const data = workerData as WorkerData;
const port = parentPort!;
const send = (m: WorkerMessage) => port.postMessage(m);

// Our parsers only: not node_modules, not the tests and fuzz targets.
const covers = new RegExp(data.covers ?? '/packages/[^/]+/src/');
const coverage = new CoverageFeedback((url) => covers.test(url) && !url.includes('/node_modules/'));
coverage.start();

const { scratchDir, scratchRoot, removeScratch } = await import('../../support/scratch.ts');
const { unmountAll } = await import('../../support/kernel.ts');
const { stopAll } = await import('../../support/processes.ts');
try {
  const target = (await import(data.targetModule)).default as import('../target.ts').FuzzTarget;
  const dir = scratchDir(`fuzz-${target.name}`);
  send({ type: 'scratch', root: scratchRoot() });
  const seeds = await target.seeds(dir, { quick: data.quick });
  await unmountAll();
  await stopAll();
  const seedFiles = seeds.map((s, i) => {
    const file = join(dir, `seed-${i}`);
    writeFileSync(file, s.data);
    return file;
  });
  send({ type: 'seeds', files: seedFiles, names: seeds.map((s) => s.name) });
  const shared = data.shared;
  const header = new Int32Array(shared, 0, CURRENT.headerInts);
  const body = new Uint8Array(shared, CURRENT.headerInts * 4);
  const options: LoopOptions = {
    seconds: data.seconds,
    seed: data.seed,
    crashDir: data.crashDir,
    caseLimitMs: data.caseLimitMs,
    memoryBound: data.memoryBound,
    onCase: (seedIndex, input) => {
      const recipe = input.recipe();
      const fits = recipe.length <= body.length;
      if (fits) body.set(recipe);
      header[CURRENT.seedIndex] = seedIndex;
      header[CURRENT.recipeLength] = fits ? recipe.length : -1;
      Atomics.add(header, CURRENT.execs, 1);
    },
  };
  const stats = await fuzzLoop(target, seeds, coverage, options);
  send({ type: 'done', stats });
} catch (err) {
  send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
} finally {
  coverage.stop();
  await unmountAll();
  removeScratch();
  process.exit(0);
}
