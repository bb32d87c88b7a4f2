/**
 * The coverage-guided fuzzer (test/fuzz/): every parser's target, or some.
 *
 *   pnpm -s fuzz --target NAME|all [--target ...] [--time SECONDS] [--seed S] [--crashes DIR] [--quick]
 *   pnpm -s fuzz --target NAME --replay FILE
 *
 * --time is per target (default 60). Each target builds its seeds with the
 * real tools, then mutates them under V8's block coverage; a crash (any
 * error but a typed one), a case over 10 s, a hang (30 s), or memory past
 * its bound is written to --crashes (default ./fuzz-crashes) with a note of
 * how it was made. Exit status 1 if anything was found. --replay runs one
 * file through the target once and prints what it throws.
 */
import { inspect, parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { runTarget } from '../test/fuzz/engine/supervise.ts';
import { FuzzInput } from '../test/fuzz/engine/input.ts';
import { TARGETS } from '../test/fuzz/targets/index.ts';
import type { FuzzTarget } from '../test/fuzz/target.ts';
import { removeScratch, scratchDir } from '../test/support/scratch.ts';
import { unmountAll } from '../test/support/kernel.ts';

const { values } = parseArgs({
  options: {
    target: { type: 'string', multiple: true },
    time: { type: 'string', default: '60' },
    seed: { type: 'string' },
    crashes: { type: 'string', default: 'fuzz-crashes' },
    quick: { type: 'boolean', default: false },
    replay: { type: 'string' },
  },
});
const names = (values.target ?? ['all']).flatMap((t) => (t === 'all' ? Object.keys(TARGETS) : [t]));
for (const n of names) if (!TARGETS[n]) throw new Error(`no target ${n}; targets: ${Object.keys(TARGETS).join(', ')}`);
const crashDir = resolve(values.crashes);

if (values.replay) {
  const target = (await import(TARGETS[names[0]])).default as FuzzTarget;
  try {
    await target.seeds(scratchDir('fuzz-replay'), { quick: false }); // the state a target keeps from its seeds (checksum menders, a second PV)
    await target.fuzz(new FuzzInput(readFileSync(values.replay)));
    console.log(`${target.name}: ${values.replay} ran without a finding`);
  } catch (err) {
    console.log(`${target.name}: ${values.replay}:\n${inspect(err)}`);
    process.exitCode = 1;
  } finally {
    await unmountAll();
    removeScratch();
  }
} else {
  const seed = Number(values.seed ?? Date.now() % 0x7fffffff);
  let found = 0;
  console.log(`fuzz: run seed ${seed}, ${values.time} s per target: ${names.join(', ')}`);
  for (const name of names) {
    const r = await runTarget(name, TARGETS[name], { seconds: Number(values.time), seed, quick: values.quick, crashDir });
    if (r.error) {
      found++;
      console.log(`${name}: could not run: ${r.error}`);
      continue;
    }
    const coverage = r.corpus === undefined ? '' : `, corpus ${r.corpus}, ${r.blocks} blocks, ${r.features} features`;
    console.log(`${name}: ${r.execs} cases in ${r.seconds?.toFixed(0)} s (${r.seeds} seeds)${coverage}`);
    if (r.finding) {
      found++;
      console.log(`  FOUND ${r.finding.kind}: ${r.finding.message.split('\n').slice(0, 12).join('\n  ')}\n  input: ${r.finding.file}\n  replay: pnpm -s fuzz --target ${name} --replay ${r.finding.file}`);
    }
  }
  process.exitCode = found ? 1 : 0;
  removeScratch();
}
