/**
 * The coverage-guided loop: run every seed, then until the time is up pick
 * a corpus entry, mutate a copy, run the target on it, and keep the copy if
 * it reached a feature no case reached before. A case that throws anything
 * but a typed error, runs longer than the case bound, or grows memory past
 * the bound is a finding: its bytes are written to the crash directory.
 * (A case that never returns is caught by the supervisor, supervise.ts.)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Prng } from '../../support/prng.ts';
import type { FuzzTarget, Seed } from '../target.ts';
import type { CoverageFeedback } from './coverage.ts';
import { FuzzInput } from './input.ts';
import { mutate, type HotRange } from './mutate.ts';

export interface LoopOptions {
  seconds: number;
  seed: number;
  crashDir: string;
  /** Longest a case may take (ms). */
  caseLimitMs: number;
  /** Growth of memory outside the V8 heap (Buffers) allowed over the run. */
  memoryBound: number;
  /** Called before each case with what is about to run (the supervisor keeps it for hang reports). */
  onCase?: (seedIndex: number, input: FuzzInput) => void;
}

export interface Finding {
  kind: 'crash' | 'slow' | 'memory' | 'hang' | 'out of memory';
  message: string;
  /** The input, written whole. */
  file: string;
  steps: string;
}

export interface LoopStats {
  target: string;
  seeds: number;
  execs: number;
  corpus: number;
  features: number;
  blocks: number;
  seconds: number;
  finding?: Finding;
}

interface Entry {
  seedIndex: number;
  input: FuzzInput;
}

export function writeFinding(crashDir: string, target: string, runSeed: number, exec: number, input: FuzzInput, kind: Finding['kind'], message: string, steps: string): Finding {
  mkdirSync(crashDir, { recursive: true });
  const file = join(crashDir, `${target}-${kind.replace(/ /g, '-')}-${runSeed}-${exec}.bin`);
  writeFileSync(file, input.bytes());
  writeFileSync(`${file}.txt`, `${target}: ${kind} in case ${exec} of run seed ${runSeed}\nmutations: ${steps}\n\n${message}\n`);
  return { kind, message, file, steps };
}

export async function fuzzLoop(target: FuzzTarget, seeds: Seed[], coverage: CoverageFeedback, options: LoopOptions): Promise<LoopStats> {
  const rnd = new Prng(options.seed);
  const corpus: Entry[] = seeds.map((s, seedIndex) => ({ seedIndex, input: new FuzzInput(s.data) }));
  const hot: HotRange[][] = seeds.map((s) => s.hot ?? []);
  const maxSize = Math.max(...seeds.map((s) => s.data.length)) * 2 + (1 << 20);
  const started = Date.now();
  const deadline = started + options.seconds * 1000;
  const memoryStart = process.memoryUsage().arrayBuffers;
  let execs = 0;
  const stats = (finding?: Finding): LoopStats => ({
    target: target.name,
    seeds: seeds.length,
    execs,
    corpus: corpus.length,
    features: coverage.seen.size,
    blocks: coverage.blocksCovered,
    seconds: (Date.now() - started) / 1000,
    finding,
  });

  const run = async (entry: Entry, steps: string): Promise<Finding | undefined> => {
    options.onCase?.(entry.seedIndex, entry.input);
    const t0 = Date.now();
    let error: unknown;
    let threw = false;
    try {
      await target.fuzz(entry.input);
    } catch (err) {
      threw = true;
      error = err;
    }
    const elapsed = Date.now() - t0;
    execs++;
    const found = (kind: Finding['kind'], message: string) => writeFinding(options.crashDir, target.name, options.seed, execs, entry.input, kind, message, steps);
    if (threw) return found('crash', inspect(error));
    if (elapsed > options.caseLimitMs) return found('slow', `took ${elapsed} ms (bound ${options.caseLimitMs} ms)`);
    const grown = process.memoryUsage().arrayBuffers - memoryStart;
    if (grown > options.memoryBound) return found('memory', `memory outside the heap grew by ${grown} bytes (bound ${options.memoryBound})`);
    return undefined;
  };

  // The seeds themselves: a real image that fails is a finding too.
  coverage.take();
  for (const entry of corpus) {
    const finding = await run(entry, `unmutated seed ${seeds[entry.seedIndex].name}`);
    coverage.takeNew();
    if (finding) return stats(finding);
  }
  while (Date.now() < deadline) {
    // Newer entries reached something new most recently: favour them a little.
    const pick = rnd.below(3) === 0 ? corpus[corpus.length - 1 - rnd.below(Math.min(corpus.length, 8))] : corpus[rnd.below(corpus.length)];
    const input = pick.input.clone();
    const custom = target.mutate && rnd.below(2) === 0 ? target.mutate(input, rnd) : undefined;
    const { steps, touched } = custom ? { steps: [custom], touched: [] } : mutate(input, {
      rnd,
      hot: hot[pick.seedIndex],
      maxSize,
      donor: () => {
        const same = corpus.filter((e) => e.seedIndex === pick.seedIndex);
        return same[rnd.below(same.length)]?.input;
      },
    });
    if (target.mend && rnd.below(2) === 0) {
      target.mend(input, touched);
      steps.push('checksums mended');
    }
    const entry = { seedIndex: pick.seedIndex, input };
    const finding = await run(entry, `seed ${seeds[pick.seedIndex].name}: ${steps.join('; ')}`);
    if (coverage.takeNew() > 0) corpus.push(entry);
    if (finding) return stats(finding);
  }
  return stats();
}
