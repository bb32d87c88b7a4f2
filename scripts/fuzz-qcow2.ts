/**
 * The long run of the qcow2 mutation fuzzer (the test suite runs a few
 * thousand cases; this runs as many as you like):
 *
 *   node --import tsx scripts/fuzz-qcow2.ts [--cases N | --seconds S] [--seed S]
 *                                           [--differential-every K] [--keep DIR]
 *
 * Every case must read or be refused with a typed error (a crash, a case over
 * 5 s, or memory growing past 512 MiB stops the run, printing how to replay
 * it). With --differential-every K, every K-th case is also written to a file
 * and read by qemu-img convert: where both read it, the bytes must be equal;
 * where only one of them does, the case is counted (and kept with --keep),
 * since guestlens is deliberately stricter than QEMU about some things
 * (clusters past the end of the file, for one).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect, parseArgs } from 'node:util';
import { differential, makeSeeds, mutate, runCase } from '../packages/qcow2-js/test/support/fuzzer.ts';
import { prng } from '../packages/qcow2-js/test/support/qemu.ts';
import { removeScratch, scratchDir } from '../test/support/scratch.ts';

const { values } = parseArgs({
  options: {
    cases: { type: 'string' },
    seconds: { type: 'string' },
    seed: { type: 'string' },
    'differential-every': { type: 'string' },
    keep: { type: 'string' },
  },
});

const cases = values.cases ? Number(values.cases) : values.seconds ? Infinity : 100_000;
const deadline = values.seconds ? Date.now() + Number(values.seconds) * 1000 : Infinity;
const runSeed = Number(values.seed ?? Date.now() % 0x7fffffff);
const differentialEvery = values['differential-every'] ? Number(values['differential-every']) : 0;
const keep = values.keep;
if (keep) mkdirSync(keep, { recursive: true });

const CASE_LIMIT_MS = 5000;
const MEMORY_BOUND = 512 * 1024 * 1024;

function stop(message: string): never {
  console.error(message);
  console.error(`replay: node --import tsx scripts/fuzz-qcow2.ts --seed ${runSeed}`);
  removeScratch();
  process.exit(1);
}

const seeds = await makeSeeds(scratchDir('fuzz-seeds'));
const caseDir = scratchDir('fuzz-cases');
// The seed with a backing file names "seed-base.qcow2" relatively; differential cases sit beside it.
const seedDir = join(caseDir, '..', 'fuzz-seeds-1');
const rnd = prng(runSeed);
const counts: Record<string, number> = { read: 0, refused: 0 };
const startMemory = process.memoryUsage().arrayBuffers;
const started = Date.now();
console.log(`fuzz-qcow2: run seed ${runSeed}, ${seeds.length} seed images`);

for (let n = 0; n < cases && Date.now() < deadline; n++) {
  const seed = seeds[n % seeds.length];
  const { data, description } = mutate(seed, rnd);
  const context = `case ${n}, seed image ${seed.name}: ${description}`;
  const t0 = Date.now();
  const outcome = await runCase(data, seed.backing, `fuzz-${n}.qcow2`, rnd);
  const elapsed = Date.now() - t0;
  if (outcome.kind === 'crash') stop(`${context}\nthrew an untyped error: ${inspect(outcome.error)}`);
  if (elapsed > CASE_LIMIT_MS) stop(`${context}\ntook ${elapsed} ms`);
  if (process.memoryUsage().arrayBuffers - startMemory > MEMORY_BOUND) stop(`${context}\nmemory outside the heap grew past ${MEMORY_BOUND} bytes`);
  counts[outcome.kind]++;
  if (differentialEvery && n % differentialEvery === 0) {
    const verdict = await differential(seed.backing ? seedDir : caseDir, `diff-${n}.qcow2`, data);
    counts[`qemu:${verdict}`] = (counts[`qemu:${verdict}`] ?? 0) + 1;
    if (verdict === 'differ') stop(`${context}\nguestlens and qemu-img both read it, with different bytes`);
    if (keep && (verdict === 'only-qemu' || verdict === 'only-guestlens')) {
      writeFileSync(join(keep, `${verdict}-${runSeed}-${n}.qcow2`), data);
      writeFileSync(join(keep, `${verdict}-${runSeed}-${n}.txt`), `${context}\n`);
    }
  }
  if (n % 5000 === 4999) console.log(`  ${n + 1} cases, ${((Date.now() - started) / 1000).toFixed(0)} s: ${JSON.stringify(counts)}`);
}
console.log(`fuzz-qcow2: done in ${((Date.now() - started) / 1000).toFixed(0)} s: ${JSON.stringify(counts)}`);
removeScratch();
