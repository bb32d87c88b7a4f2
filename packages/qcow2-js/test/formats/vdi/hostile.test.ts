/**
 * vdi hostile input: refused by name with the offset of the field at fault,
 * in bounded time and memory; then a few thousand mutated images (in
 * memory), each read or refused with a typed error.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Qcow2Error, VdiImage } from '../../../src/index.ts';
import { MemorySource } from '../../../../../test/support/memorySource.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { makeRaw, MiB, qemuImg } from '../../support/qemu.ts';
import { fuzzSeeds } from '../../support/formatFuzzer.ts';
import { makeFormatSeeds } from '../../support/formatSeeds.ts';

const CASES = Number(process.env.GUESTLENS_FUZZ_CASES ?? 250);

async function refusal(data: Buffer, read = true): Promise<Qcow2Error> {
  try {
    const image = await VdiImage.open(new MemorySource(data, 'bad.vdi'));
    if (read) for (let off = 0; off < image.size; off += MiB) await image.read(off, Math.min(MiB, image.size - off));
    await image.close();
  } catch (err) {
    assert.ok(err instanceof Qcow2Error, `expected a typed error, got ${String(err)}`);
    assert.match(err.message, /^bad\.vdi: /);
    return err;
  }
  assert.fail('read without error');
}

describe('vdi: hostile images', function () {
  this.timeout(300_000);
  let valid: Buffer;
  let staticImage: Buffer;
  let dir: string;

  before(async () => {
    dir = scratchDir('vdi-hostile');
    const raw = join(dir, 'source.raw');
    await makeRaw(raw, 3 * MiB, [[0, MiB + 4096], [2 * MiB, 100_000]], 3);
    await qemuImg(['convert', '-q', '-O', 'vdi', raw, join(dir, 'd.vdi')]);
    await qemuImg(['convert', '-q', '-O', 'vdi', '-o', 'static=on', raw, join(dir, 's.vdi')]);
    valid = await readFile(join(dir, 'd.vdi'));
    staticImage = await readFile(join(dir, 's.vdi'));
  });

  const patched = (base: Buffer, edits: [number, (b: Buffer, at: number) => void][]) => {
    const b = Buffer.from(base);
    for (const [at, edit] of edits) edit(b, at);
    return b;
  };
  const u32 = (v: number) => (b: Buffer, at: number) => b.writeUInt32LE(v >>> 0, at);
  const u64 = (v: bigint) => (b: Buffer, at: number) => b.writeBigUInt64LE(v, at);

  it('a block map entry pointing past the end of the file', async () => {
    const err = await refusal(patched(valid, [[0x200, u32(4000)]]));
    assert.match(err.message, /past its end/);
    assert.equal(err.offset, 0x200);
  });

  it('a block map claiming millions of blocks in a small file: refused at open, nothing allocated for it', async () => {
    const err = await refusal(patched(valid, [[0x180, u32(100_000_000)], [0x170, u64(100_000_000n * 1048576n)]]), false);
    assert.match(err.message, /block map .* runs past the end of the file/);
  });

  it('the fields QEMU refuses: version, sector size, block size, a disk bigger than its map, differencing UUIDs', async () => {
    assert.match((await refusal(patched(valid, [[0x44, u32(0x00010000)]]))).message, /VDI version 1\.0/);
    assert.match((await refusal(patched(valid, [[0x168, u32(4096)]]))).message, /sector size 4096/);
    assert.match((await refusal(patched(valid, [[0x178, u32(4096)]]))).message, /block size 4096/);
    assert.match((await refusal(patched(valid, [[0x170, u64(10n * 1048576n)]]))).message, /larger than the block map has room for/);
    assert.match((await refusal(patched(valid, [[0x1b8, u32(1)]]))).message, /differencing image/);
    assert.match((await refusal(patched(valid, [[0x154, u32(0x201)]]))).message, /not sector-aligned/);
  });

  it('truncated: a header cut short, and data blocks cut off', async () => {
    assert.match((await refusal(valid.subarray(0, 300))).message, /too short for a VDI header/);
    const cut = staticImage.subarray(0, staticImage.length - 2 * MiB);
    assert.match((await refusal(cut)).message, /past its end/);
  });

  it(`${CASES} mutated images read or are refused with typed errors`, async () => {
    const runSeed = Number(process.env.GUESTLENS_FUZZ_SEED ?? Date.now() % 0x7fffffff);
    const result = await fuzzSeeds(await makeFormatSeeds('vdi', dir), CASES, dir, runSeed);
    console.log(`      vdi fuzz run seed ${runSeed}: ${result.read} read, ${result.refused} refused; against qemu-img: ${JSON.stringify(result.verdicts)}`);
  });
});
