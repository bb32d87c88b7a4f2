/**
 * Hostile LVM metadata: seeded mutation fuzzing (test/support/prng.ts) of
 * real VG text made by the lvm2 tools — byte flips, cut and repeated
 * ranges, huge and negative numbers, names swapped so LVs refer to
 * themselves or each other, unknown and mismatched segment types, deep
 * nesting — through the parser, the VG reader, the segment mapper and reads
 * of every LV; and of the PV label, metadata area header and text on the
 * disk, through the whole assembler. Every failure must be one of our typed
 * errors, reads stay within a budget, and memory stays bounded. A failing
 * case prints its seed and number; the long run is `pnpm -s fuzz --target lvm`.
 */
import assert from 'node:assert/strict';
import { parseConfigText } from '../../../src/volumes/lvm/configText.ts';
import { LvmError } from '../../../src/volumes/lvm/errors.ts';
import { MDA_HEADER, lvmCrc } from '../../../src/volumes/lvm/layout.ts';
import { readMetadataText } from '../../../src/volumes/lvm/metadataArea.ts';
import { readPvLabel } from '../../../src/volumes/lvm/label.ts';
import { SegmentMapper } from '../../../src/volumes/lvm/segmentMapping.ts';
import { readVolumeGroup } from '../../../src/volumes/lvm/vgMetadata.ts';
import { lvmUnavailable } from '../../../../../test/support/lvm.ts';
import { MemorySource } from '../../../../../test/support/memorySource.ts';
import { Prng } from '../../../../../test/support/prng.ts';
import { buildFuzzBase, mutateText, runDiskCase, runTextCase, type FuzzBase, type TextOutcome } from './lvmFuzzer.ts';

const MiB = 1024 * 1024;
const SEED = Number(process.env.LVM_FUZZ_SEED ?? 0x1f2e3d4c);

describe('lvm: hostile metadata (seeded mutation fuzzing, in memory)', function () {
  this.timeout(300000);
  let base: FuzzBase;

  before(async function () {
    const why = await lvmUnavailable();
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
    base = await buildFuzzBase();
  });

  it('the unmutated text maps every LV (the fuzzer starts from something that works)', async () => {
    const o = await runTextCase(base, base.text);
    assert.deepEqual(o, { refused: 0, mapped: 7, unavailable: 0 });
  });

  it(`3000 mutated texts: typed errors only, bounded reads and memory (seed ${SEED})`, async () => {
    const p = new Prng(SEED);
    const outcomes: TextOutcome = { refused: 0, mapped: 0, unavailable: 0 };
    const heapBefore = process.memoryUsage().heapUsed;
    for (let n = 0; n < 3000; n++) {
      const text = mutateText(p, base.text);
      try {
        await runTextCase(base, text, outcomes);
      } catch (err) {
        assert.fail(`case ${n} (seed ${SEED}): untyped ${(err as Error)?.stack ?? err}`);
      }
    }
    // The fuzzer must reach every stage often, or it tests nothing.
    for (const [k, v] of Object.entries(outcomes)) assert.ok(v > 100, `only ${v} cases ${k}: ${JSON.stringify(outcomes)}`);
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 256 * MiB, 'memory grew past 256 MiB');
  });

  it('1000 mutated disks (label, metadata area header, text with and without CRCs): the guest opens, problems are named', async () => {
    const p = new Prng(SEED ^ 0x5a5a5a5a);
    let listed = 0;
    for (let n = 0; n < 1000; n++) {
      try {
        listed += await runDiskCase(base, p);
      } catch (err) {
        assert.fail(`case ${n} (seed ${SEED}): ${(err as Error)?.stack ?? err}`);
      }
    }
    assert.ok(listed > 500, `only ${listed} LVs listed over 1000 cases`);
  });

  it('a metadata area claiming 1 GiB (or 1 GiB of text) costs no more than its header and its real text', async () => {
    const header = 4096;
    const claim = (area: bigint, text?: bigint) => {
      const disk = Buffer.from(base.disks.get('p0.img')!.subarray(0, 1 * MiB));
      disk.writeBigUInt64LE(area, header + MDA_HEADER.size);
      if (text !== undefined) disk.writeBigUInt64LE(text, header + MDA_HEADER.raw_locns + 8);
      disk.writeUInt32LE(lvmCrc(disk.subarray(header + 4, header + 512)), header);
      return disk;
    };
    const read = async (disk: Buffer, size: number) => {
      const s = new MemorySource(disk, 'big.img', size);
      const label = (await readPvLabel(s))!;
      const result = readMetadataText(s, label.metadataAreas[0]);
      return { s, result };
    };
    // A 1 GiB area on a 2 GiB device: only the header and the text's own length are read.
    const ok = await read(claim(1n << 30n), 2 * 1024 * MiB);
    assert.ok(await ok.result);
    assert.ok(ok.s.largestRead <= 16 * 1024, `read ${ok.s.largestRead} bytes at once`);
    // 1 GiB of text: refused before any of it is read.
    const text = await read(claim(1n << 30n, (1n << 30n) - 1024n), 2 * 1024 * MiB);
    await assert.rejects(text.result, (err: unknown) => err instanceof LvmError && /more than guestlens reads/.test(err.message));
    assert.ok(text.s.largestRead <= 2048);
    // A 1 GiB area on a 24 MiB device: damage.
    const small = await read(claim(1n << 30n), 24 * MiB);
    await assert.rejects(small.result, (err: unknown) => err instanceof LvmError && /runs past the end of the device/.test(err.message));
  });

  it('an LV whose area is itself (a cycle) or nests past the limit is a typed error naming the cycle', async () => {
    const text = base.text.replace(/(\nlin \{[^]*?stripes = \[\s*)"pv0", \d+/, '$1"lin", 0');
    assert.notEqual(text, base.text);
    const vg = readVolumeGroup(parseConfigText(text), 'fuzz');
    const mapper = new SegmentMapper(vg, new Map(), (lv) => lv);
    assert.throws(() => mapper.map('lin'), (err: unknown) => err instanceof LvmError && /circular: lin -> lin/.test(err.message));
  });
});
