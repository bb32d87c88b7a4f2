/**
 * Issue 18, images against QEMU (fast-check): for random images made by
 * qemu-img and qemu-io — qcow2 of every cluster size, version 2 and 3,
 * subclusters, zlib and zstd, compressed, zero and discarded writes, backing
 * chains of up to three over a qcow2 or raw base whose sizes differ; vmdk,
 * vhdx, vpc and vdi of each subformat converted from a random raw and then
 * written in place — our bytes over the whole disk and in random unaligned
 * ranges equal `qemu-img convert -O raw`, and our extents agree with
 * `qemu-img map` (assertFormatMatchesQemu). A failure shrinks to a minimal
 * write list and prints the commands that rebuild it.
 *
 * In the suite: a fixed seed and few runs; soaks: `pnpm test:properties`
 * (test/support/properties.ts has the knobs).
 */
import assert from 'node:assert/strict';
import { readdir, rm, open } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { assertFormatMatchesQemu } from '../../packages/qcow2-js/test/support/formats.ts';
import { propertyParameters } from '../support/properties.ts';
import { scratchDir } from '../support/scratch.ts';
import { chainCaseArb, convertCaseArb, runScript, scriptOf, scriptText, writeArb, type ChainCase, type ConvertCase, type ImageCase } from './imageModel.ts';

interface CheckOptions {
  alterReference?: (rawPath: string) => Promise<void>;
}

/** The property: build the case with QEMU's tools, then our reading must equal QEMU's. */
async function imageAgreesWithQemu(c: ImageCase, options: CheckOptions = {}): Promise<void> {
  const dir = scratchDir('prop-image');
  const script = scriptOf(c);
  try {
    await runScript(script, dir);
    const files = (await readdir(dir)).map((f) => join(dir, f));
    await assertFormatMatchesQemu(join(dir, script.image), {
      format: script.format,
      files,
      preciseMap: script.format !== 'vhdx',
      ranges: c.ranges,
      alterReference: options.alterReference,
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- rebuild this case:\n${scriptText(script)}\n`, { cause: err });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Counterexamples found by soaks, run first every time. */
const CHAIN_EXAMPLES: [ChainCase][] = [
  // An unaligned zero write into a raw file leaves a fallocated (unwritten) block, which SEEK_DATA calls a hole
  // only until the guard's reading brings its pages into the page cache: qemu-img map was asked too early.
  [{ kind: 'chain', layers: [{ format: 'raw', size: 6457344, writes: [{ op: 'zero', offset: 3730, length: 367, unmap: false }] }], ranges: [] }],
];

describe('property (fast-check): random images read as QEMU reads them', function () {
  this.timeout(900_000);

  it('qcow2 backing chains (1-3 layers, qcow2 or raw base) with random writes, zero writes, discards, compressed writes', async () => {
    await fc.assert(fc.asyncProperty(chainCaseArb, (c) => imageAgreesWithQemu(c)), propertyParameters('qcow2 chains', 10, { examples: CHAIN_EXAMPLES }));
  });

  it('vmdk, vhdx, vpc, vdi of every subformat: converted from a random raw, then written in place', async () => {
    await fc.assert(fc.asyncProperty(convertCaseArb, (c) => imageAgreesWithQemu(c)), propertyParameters('converted formats', 10));
  });

  it('the property fails on a planted difference (one byte of QEMU\'s answer flipped), and shrinks it to one 1-byte write', async () => {
    // vdi images of 128 KiB and raw writes only, so that each shrinking step is cheap.
    const size = 128 * 1024;
    const arb: fc.Arbitrary<ConvertCase> = fc.array(writeArb(size, undefined, ['write', 'zero', 'discard']), { maxLength: 6 }).map((raw) => ({
      kind: 'convert',
      size,
      target: { format: 'vdi', static: false },
      raw,
      direct: [],
      ranges: [],
    }));
    // The plant: QEMU's byte at the last pattern write is flipped, so the property fails exactly when the case has such a write.
    const planted = (c: ConvertCase) => {
      const last = c.raw.filter((w) => w.op === 'write').pop();
      return imageAgreesWithQemu(c, {
        alterReference: last && (async (ref) => {
          const fh = await open(ref, 'r+');
          try {
            await fh.write(Buffer.from([last.pattern ^ 0xff]), 0, 1, last.offset);
          } finally {
            await fh.close();
          }
        }),
      });
    };
    const result = await fc.check(fc.asyncProperty(arb, planted), { seed: 42, numRuns: 30 });
    assert.equal(result.failed, true, 'the planted difference went unnoticed');
    const [minimal] = result.counterexample!;
    assert.deepEqual(minimal.raw.map((w) => w.op), ['write'], `shrunk to ${JSON.stringify(minimal.raw)}`);
    assert.equal((minimal.raw[0] as { length: number }).length, 1);
    assert.match(String((result.errorInstance as Error).message), /rebuild this case:[\s\S]*qemu-io -f raw -c 'write -P \d+ \d+ 1' source\.raw/);
  });
});
