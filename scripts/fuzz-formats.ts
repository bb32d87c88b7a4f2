/**
 * The long run of the vdi, vpc, vhdx and vmdk mutation fuzzer (the test
 * suite runs a thousand cases per format; this runs as many as you like):
 *
 *   node --import tsx scripts/fuzz-formats.ts [--format vdi|vpc|vhdx|vmdk ...]
 *                                              [--cases N | --seconds S] [--seed S]
 *                                              [--differential-every K]
 *
 * Every case must read or be refused with a typed error naming the image (a
 * crash, a case over 5 s, or memory growing past 512 MiB stops the run,
 * printing how to replay it). With --differential-every K, every K-th case
 * is also written to files and read by qemu-img convert: where both read
 * it, the bytes must be equal (guestlens is deliberately stricter than QEMU
 * about data past the end of the file, and follows VHD and VHDX parents
 * QEMU ignores, so one-sided verdicts are counted, not failures).
 */
import { inspect, parseArgs } from 'node:util';
import { differentialCase, mutateSeed, runFormatCase } from '../packages/qcow2-js/test/support/formatFuzzer.ts';
import { makeFormatSeeds } from '../packages/qcow2-js/test/support/formatSeeds.ts';
import { prng } from '../packages/qcow2-js/test/support/qemu.ts';
import { removeScratch, scratchDir } from '../test/support/scratch.ts';

const { values } = parseArgs({
  options: {
    format: { type: 'string', multiple: true },
    cases: { type: 'string' },
    seconds: { type: 'string' },
    seed: { type: 'string' },
    'differential-every': { type: 'string' },
  },
});

const formats = (values.format ?? ['vdi', 'vpc', 'vhdx', 'vmdk']) as ('vdi' | 'vpc' | 'vhdx' | 'vmdk')[];
const cases = values.cases ? Number(values.cases) : values.seconds ? Infinity : 100_000;
const deadline = values.seconds ? Date.now() + Number(values.seconds) * 1000 : Infinity;
const runSeed = Number(values.seed ?? Date.now() % 0x7fffffff);
const differentialEvery = values['differential-every'] ? Number(values['differential-every']) : 0;
const CASE_LIMIT_MS = 5000;
const MEMORY_BOUND = 512 * 1024 * 1024;

function stop(message: string): never {
  console.error(message);
  console.error(`replay: node --import tsx scripts/fuzz-formats.ts ${formats.map((f) => `--format ${f}`).join(' ')} --seed ${runSeed}`);
  removeScratch();
  process.exit(1);
}

const dir = scratchDir('fuzz-formats');
const seeds = (await Promise.all(formats.map((f) => makeFormatSeeds(f, dir)))).flat();
const rnd = prng(runSeed);
const counts: Record<string, number> = { read: 0, refused: 0 };
const startMemory = process.memoryUsage().arrayBuffers;
const started = Date.now();
console.log(`fuzz-formats: run seed ${runSeed}, ${seeds.length} seed images (${formats.join(', ')})`);

for (let n = 0; n < cases && Date.now() < deadline; n++) {
  const seed = seeds[n % seeds.length];
  const { file, description } = mutateSeed(seed, rnd);
  const name = `fuzz-${n}.${seed.format}`;
  const context = `case ${n}, seed ${seed.format} ${seed.name}: ${description}`;
  const t0 = Date.now();
  const outcome = await runFormatCase(seed, file, name, rnd);
  const elapsed = Date.now() - t0;
  if (outcome.kind === 'crash') stop(`${context}\nthrew an untyped error: ${inspect(outcome.error)}`);
  if (outcome.kind === 'refused' && !outcome.message.includes(name) && !outcome.message.includes('/fuzz/')) stop(`${context}\nerror does not name the image: ${outcome.message}`);
  if (elapsed > CASE_LIMIT_MS) stop(`${context}\ntook ${elapsed} ms`);
  if (process.memoryUsage().arrayBuffers - startMemory > MEMORY_BOUND) stop(`${context}\nmemory outside the heap grew past ${MEMORY_BOUND} bytes`);
  counts[outcome.kind]++;
  if (differentialEvery && n % differentialEvery === 0) {
    const verdict = await differentialCase(dir, seed, file.bytes(), `diff-${n}`);
    counts[`qemu:${verdict}`] = (counts[`qemu:${verdict}`] ?? 0) + 1;
    if (verdict === 'differ') stop(`${context}\nguestlens and qemu-img both read it, with different bytes`);
  }
  if (n % 5000 === 4999) console.log(`  ${n + 1} cases, ${((Date.now() - started) / 1000).toFixed(0)} s: ${JSON.stringify(counts)}`);
}
console.log(`fuzz-formats: done in ${((Date.now() - started) / 1000).toFixed(0)} s: ${JSON.stringify(counts)}`);
removeScratch();
