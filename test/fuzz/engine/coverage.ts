/**
 * Coverage feedback from V8 itself: precise block coverage with counts
 * (what `node --experimental-test-coverage` and c8 use), taken after every
 * case through an in-thread inspector session. Each take resets the counters
 * and reports only the functions that ran, so a take costs milliseconds.
 *
 * A feature is (block, bucket of its count), as AFL counts edges: a block
 * run 1, 2, 3, 4-7, 8-15, ... times. V8 leaves out a nested block whose
 * count equals its parent's, so the blocks of each function are learnt as
 * they are reported (a block run zero times is reported), and a known block
 * that is missing from a report has the count of the innermost range that
 * holds it.
 */
import { Session } from 'node:inspector';

interface Range {
  startOffset: number;
  endOffset: number;
  count: number;
}
interface FunctionCoverage {
  ranges: Range[];
}
interface ScriptCoverage {
  scriptId: string;
  url: string;
  functions: FunctionCoverage[];
}

function bucket(count: number): number {
  if (count <= 3) return count;
  return Math.min(16, 2 + Math.floor(Math.log2(count)));
}

export class CoverageFeedback {
  private readonly session = new Session();
  /** Blocks of each function seen so far: key "script:start" → [start, end] pairs. */
  private readonly blocks = new Map<string, Array<[number, number]>>();
  /** Every feature any case reached. */
  readonly seen = new Set<string>();

  /** `include` picks the scripts that count (our parser sources, not node_modules or the fuzzer). */
  constructor(private readonly include: (url: string) => boolean) {}

  /** Must run before the code under test is loaded, so it is compiled with block counters. */
  start(): void {
    this.session.connect();
    this.post('Profiler.enable');
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  stop(): void {
    this.post('Profiler.stopPreciseCoverage');
    this.session.disconnect();
  }

  private post(method: string, params?: object): unknown {
    let out: unknown;
    let error: Error | null = null;
    let done = false;
    this.session.post(method, params, (err, result) => {
      error = err;
      out = result;
      done = true;
    });
    // An in-thread session answers synchronously; anything else is a misuse.
    if (!done) throw new Error(`inspector ${method} did not answer synchronously`);
    if (error) throw error;
    return out;
  }

  /** Features reached since the last take. */
  take(): Set<string> {
    const { result } = this.post('Profiler.takePreciseCoverage') as { result: ScriptCoverage[] };
    const features = new Set<string>();
    for (const script of result) {
      if (!this.include(script.url)) continue;
      for (const fn of script.functions) {
        const ranges = fn.ranges;
        if (!ranges.length || ranges[0].count === 0) continue;
        const key = `${script.scriptId}:${ranges[0].startOffset}`;
        let known = this.blocks.get(key);
        if (!known) this.blocks.set(key, (known = []));
        for (const r of ranges) if (!known.some(([s, e]) => s === r.startOffset && e === r.endOffset)) known.push([r.startOffset, r.endOffset]);
        for (let b = 0; b < known.length; b++) {
          const [s, e] = known[b];
          let count = 0;
          let span = Infinity;
          for (const r of ranges) {
            if (r.startOffset <= s && r.endOffset >= e && r.endOffset - r.startOffset < span) {
              span = r.endOffset - r.startOffset;
              count = r.count;
            }
          }
          if (count > 0) features.add(`${key}:${b}:${bucket(count)}`);
        }
      }
    }
    return features;
  }

  /** Take, and say how many of the features no case reached before (they join `seen`). */
  takeNew(): number {
    let fresh = 0;
    for (const f of this.take()) {
      if (this.seen.has(f)) continue;
      this.seen.add(f);
      fresh++;
    }
    return fresh;
  }

  /** Blocks reached so far (any count), for reports. */
  get blocksCovered(): number {
    const blocks = new Set<string>();
    for (const f of this.seen) blocks.add(f.slice(0, f.lastIndexOf(':')));
    return blocks.size;
  }
}
