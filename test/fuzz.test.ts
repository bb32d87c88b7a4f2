/**
 * The bounded run of the coverage-guided fuzzer (test/fuzz/): first the
 * engine must find a bug planted three comparisons deep (a fuzzer that
 * cannot fails this), then every target runs for a few seconds, two at a
 * time, on its quick seeds; any crash, slow case, hang or memory past its
 * bound fails the test with the input's path and how to replay it.
 * `pnpm -s fuzz --target all --time 3600` is the long run.
 * GUESTLENS_FUZZ_SECONDS sets the seconds per target (default 2),
 * GUESTLENS_FUZZ_SEED the run seed.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { runTarget, type TargetResult } from './fuzz/engine/supervise.ts';
import { TARGETS } from './fuzz/targets/index.ts';
import { scratchDir } from './support/scratch.ts';

const SECONDS = Number(process.env.GUESTLENS_FUZZ_SECONDS ?? 2);
// A fixed seed in the suite, so a run is repeatable; the long runs (pnpm -s fuzz) take a new one each time.
const SEED = Number(process.env.GUESTLENS_FUZZ_SEED ?? 20261202);

/**
 * Found and not fixed yet: target -> the kind of finding it still makes. Listed, not hidden: each is printed
 * with its replay command when it occurs, and anything else from that target fails the test.
 */
const KNOWN_FINDINGS: Record<string, RegExp> = {};

function report(r: TargetResult): string {
  if (r.error) return `${r.target}: could not run: ${r.error}`;
  if (r.finding) return `${r.target}: ${r.finding.kind} (run seed ${SEED}, GUESTLENS_FUZZ_SEED=${SEED}):\n${r.finding.message}\ninput: ${r.finding.file}\nreplay: pnpm -s fuzz --target ${r.target} --replay ${r.finding.file}`;
  return `${r.target}: ${r.execs} cases, corpus ${r.corpus}, ${r.blocks} blocks`;
}

describe('coverage-guided fuzzing (bounded)', function () {
  this.timeout(240_000);
  const crashDir = scratchDir('fuzz-crashes');

  it('the engine finds a bug planted three comparisons deep, and writes the input', async () => {
    const r = await runTarget('planted', new URL('./fuzz/planted.ts', import.meta.url).href, { seconds: 20, seed: SEED, quick: true, crashDir, covers: '/test/fuzz/planted\\.ts' });
    assert.equal(r.error, undefined, r.error);
    assert.equal(r.finding?.kind, 'crash', `not found in ${r.execs} cases: ${report(r)}`);
    assert.match(r.finding.message, /planted bug reached/);
    assert.ok(existsSync(r.finding.file));
    console.log(`      planted bug found after ${r.execs} cases`);
  });

  it(`every parser's target, ${SECONDS} s each: no crash, hang or memory past its bound`, async () => {
    const names = Object.keys(TARGETS);
    const results: TargetResult[] = [];
    // Three workers at a time: most of a target's time is building its seeds (mkfs, qemu-img, mounts), which waits on the tools.
    const queue = [...names];
    await Promise.all(
      [0, 1, 2].map(async () => {
        for (let name = queue.shift(); name; name = queue.shift()) results.push(await runTarget(name, TARGETS[name], { seconds: SECONDS, seed: SEED, quick: true, crashDir }));
      }),
    );
    for (const r of results) console.log(`      ${report(r).split('\n')[0]}`);
    const bad = results.filter((r) => r.error || (r.finding && !KNOWN_FINDINGS[r.target]?.test(r.finding.kind)));
    assert.equal(bad.length, 0, bad.map(report).join('\n\n'));
    for (const r of results) if (r.finding && KNOWN_FINDINGS[r.target]) console.log(`      known, not fixed yet: ${report(r)}`);
    for (const r of results) assert.ok((r.execs ?? 0) > (r.seeds ?? 0), `${r.target}: no mutated case ran`);
  });
});
