/**
 * A few thousand mutated images per run (`pnpm -s fuzz --target qcow2` runs more):
 * each one reads or is refused with a typed error; none crashes, hangs or
 * allocates without bound. The seed of the run is printed, so a failure can
 * be replayed with GUESTLENS_FUZZ_SEED.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { differential, makeSeeds, mutate, runCase, type Seed, type Verdict } from '../../support/fuzzer.ts';
import { prng } from '../../support/qemu.ts';

const CASES = Number(process.env.GUESTLENS_FUZZ_CASES ?? 750);
/** One case may take long under load, but not this long: a case that does is treated as a hang. */
const CASE_LIMIT_MS = 5000;
/** Growth of memory outside the V8 heap (Buffers) tolerated over the whole run. */
const MEMORY_BOUND = 512 * 1024 * 1024;

describe('qcow2-js mutation fuzzer', function () {
  this.timeout(300_000);
  let seeds: Seed[];
  let seedDir: string;

  before(async () => {
    seedDir = scratchDir('fuzz');
    seeds = await makeSeeds(seedDir);
  });

  it(`${CASES} mutated images: each reads or is refused with a typed error, none crashes or hangs`, async () => {
    const runSeed = Number(process.env.GUESTLENS_FUZZ_SEED ?? Date.now() % 0x7fffffff);
    const rnd = prng(runSeed);
    const counts = { read: 0, refused: 0 };
    const verdicts: Partial<Record<Verdict, number>> = {};
    // The unmutated seeds read the same through both, which also proves the differential check can pass.
    for (const seed of seeds) assert.equal(await differential(seedDir, `unmutated-${seed.name}.qcow2`, seed.image), 'same', seed.name);
    const startMemory = process.memoryUsage();
    for (let n = 0; n < CASES; n++) {
      const seed = seeds[n % seeds.length];
      const { data, description } = mutate(seed, rnd);
      const started = Date.now();
      const outcome = await runCase(data, seed.backing, `fuzz-${n}.qcow2`, rnd);
      const elapsed = Date.now() - started;
      const context = `case ${n} of run seed ${runSeed} (GUESTLENS_FUZZ_SEED=${runSeed}), seed image ${seed.name}: ${description}`;
      if (outcome.kind === 'crash') assert.fail(`${context}\nthrew an untyped error: ${inspect(outcome.error)}`);
      if (outcome.kind === 'refused') {
        assert.ok(outcome.message.startsWith(`fuzz-${n}.qcow2`), `${context}\nerror does not name the image: ${outcome.message}`);
      }
      assert.ok(elapsed < CASE_LIMIT_MS, `${context}\ntook ${elapsed} ms`);
      counts[outcome.kind]++;
      // Every 10th case also from a real file (real I/O interleavings, the chain resolved);
      // every 100th also through qemu-img: where both read it, the bytes must be the same.
      if (n % 10 === 0) {
        const verdict = await differential(seedDir, `case-${n}.qcow2`, data, n % 100 === 0);
        verdicts[verdict] = (verdicts[verdict] ?? 0) + 1;
        assert.notEqual(verdict, 'differ', `${context}\nguestlens and qemu-img both read it, with different bytes`);
      }
      const grown = process.memoryUsage().arrayBuffers - startMemory.arrayBuffers;
      assert.ok(grown < MEMORY_BOUND, `${context}\nmemory outside the heap grew by ${grown} bytes`);
    }
    // Both outcomes must occur, or the mutations are not reaching the parser.
    assert.ok(counts.read > CASES / 20 && counts.refused > CASES / 20, `outcomes ${JSON.stringify(counts)}`);
    console.log(`      fuzz run seed ${runSeed}: ${counts.read} read, ${counts.refused} refused; against qemu-img: ${JSON.stringify(verdicts)}`);
  });
});
