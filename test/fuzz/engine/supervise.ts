/**
 * Runs one target in a worker thread and watches it: a worker whose case
 * counter stops moving for `hangMs` is stopped and its current case written
 * out as a hang; a worker that runs out of its heap limit is reported with
 * the case it was on. Both come back as findings, like a crash.
 */
import { readFileSync, rmSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { FuzzInput } from './input.ts';
import { writeFinding, type Finding, type LoopStats } from './loop.ts';
import { CURRENT, type WorkerData, type WorkerMessage } from './protocol.ts';

export interface SuperviseOptions {
  seconds: number;
  seed: number;
  quick: boolean;
  crashDir: string;
  caseLimitMs?: number;
  hangMs?: number;
  memoryBound?: number;
  heapMb?: number;
  covers?: string;
}

export interface TargetResult extends Partial<LoopStats> {
  target: string;
  /** The target could not run (its seeds could not be built, ...). */
  error?: string;
  finding?: Finding;
}

const RECIPE_BYTES = 4 << 20;

export function runTarget(target: string, targetModule: string, o: SuperviseOptions): Promise<TargetResult> {
  const shared = new SharedArrayBuffer(CURRENT.headerInts * 4 + RECIPE_BYTES);
  const header = new Int32Array(shared, 0, CURRENT.headerInts);
  const data: WorkerData = {
    targetModule,
    seconds: o.seconds,
    seed: o.seed,
    quick: o.quick,
    crashDir: o.crashDir,
    caseLimitMs: o.caseLimitMs ?? 10_000,
    memoryBound: o.memoryBound ?? 1 << 30,
    covers: o.covers,
    shared,
  };
  const worker = new Worker(new URL('./boot.mjs', import.meta.url), {
    workerData: { ...data, entry: new URL('./worker.ts', import.meta.url).href },
    resourceLimits: { maxOldGenerationSizeMb: o.heapMb ?? 2048 },
    stdout: false,
  });
  const hangMs = o.hangMs ?? 30_000;
  let seedFiles: string[] | undefined;
  let seedNames: string[] = [];
  let scratch: string | undefined;
  let settled = false;
  let done: LoopStats | undefined;

  const current = (kind: Finding['kind'], message: string): Finding | undefined => {
    if (!seedFiles) return undefined;
    const length = header[CURRENT.recipeLength];
    const seedIndex = header[CURRENT.seedIndex];
    const base = readFileSync(seedFiles[seedIndex]);
    const recipe = Buffer.from(new Uint8Array(shared, CURRENT.headerInts * 4, Math.max(0, length)));
    const input = length > 0 ? FuzzInput.fromRecipe(base, recipe) : new FuzzInput(base);
    const note = length < 0 ? ' (the edits did not fit the shared buffer: this is the unmutated seed)' : '';
    return writeFinding(o.crashDir, target, o.seed, header[CURRENT.execs], input, kind, message + note, `seed ${seedNames[seedIndex]}`);
  };

  const started = Date.now();
  // A worker stopped for a hang or its heap reports no stats: say what is known of the run.
  const stopped = (): TargetResult => ({ target, execs: header[CURRENT.execs], seeds: seedFiles?.length, seconds: (Date.now() - started) / 1000 });
  return new Promise<TargetResult>((resolve) => {
    let lastExecs = -1;
    let lastChange = Date.now();
    const finish = (r: TargetResult) => {
      if (settled) return;
      settled = true;
      clearInterval(watch);
      void worker.terminate().then(() => {
        if (scratch) rmSync(scratch, { recursive: true, force: true });
        resolve(r);
      });
    };
    const watch = setInterval(() => {
      if (!seedFiles) return;
      const execs = Atomics.load(header, CURRENT.execs);
      if (execs !== lastExecs) {
        lastExecs = execs;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > hangMs) {
        finish({ ...stopped(), finding: current('hang', `case ${execs} did not return within ${hangMs} ms`) });
      }
    }, 250);
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'scratch') scratch = m.root;
      else if (m.type === 'seeds') {
        seedFiles = m.files;
        seedNames = m.names;
        lastChange = Date.now();
      } else if (m.type === 'done') {
        // The worker cleans up (unmounts, scratch) and exits; the result is given on its exit.
        scratch = undefined;
        done = m.stats;
      } else finish({ target, error: m.message });
    });
    worker.on('error', (err: Error & { code?: string }) => {
      const oom = err.code === 'ERR_WORKER_OUT_OF_MEMORY';
      finish({ ...stopped(), finding: oom ? current('out of memory', `the worker ran out of its ${o.heapMb ?? 2048} MiB heap`) : undefined, error: oom ? undefined : (err.stack ?? String(err)) });
    });
    worker.on('exit', (code) => finish(done ?? { target, error: `the worker exited (${code}) before it reported` }));
  });
}
