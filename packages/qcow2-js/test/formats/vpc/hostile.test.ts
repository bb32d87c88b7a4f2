/**
 * vpc hostile input: refused by name with the offset of the structure at
 * fault, in bounded time and memory; then mutated images in memory (the
 * footer checksum mended half the time, so mutations reach the dynamic
 * header, the BAT and the bitmaps), each read or refused with a typed error.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Qcow2Error, VpcImage } from '../../../src/index.ts';
import { MemorySource } from '../../../../../test/support/memorySource.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { makeRaw, MiB, qemuImg } from '../../support/qemu.ts';
import { fuzzSeeds } from '../../support/formatFuzzer.ts';
import { makeFormatSeeds } from '../../support/formatSeeds.ts';
import { editFooter } from './build.ts';

const CASES = Number(process.env.GUESTLENS_FUZZ_CASES ?? 250);

async function refusal(data: Buffer): Promise<Qcow2Error> {
  try {
    const image = await VpcImage.open(new MemorySource(data, 'bad.vhd'));
    const end = Math.min(image.size, 16 * MiB);
    for (let off = 0; off < end; off += MiB) await image.read(off, Math.min(MiB, end - off));
    await image.close();
  } catch (err) {
    assert.ok(err instanceof Qcow2Error, `expected a typed error, got ${String(err)}`);
    assert.match(err.message, /^bad\.vhd: /);
    return err;
  }
  assert.fail('read without error');
}

describe('vpc: hostile images', function () {
  this.timeout(300_000);
  let dynamic: Buffer;
  let fixed: Buffer;
  let dir: string;
  let dyn: number;
  let bat: number;

  before(async () => {
    dir = scratchDir('vpc-hostile');
    const raw = join(dir, 'source.raw');
    await makeRaw(raw, 3 * MiB, [[0, MiB + 4096], [2 * MiB + 100, 100_000]], 5);
    await qemuImg(['convert', '-q', '-O', 'vpc', raw, join(dir, 'd.vhd')]);
    await qemuImg(['convert', '-q', '-O', 'vpc', '-o', 'subformat=fixed', raw, join(dir, 'f.vhd')]);
    dynamic = await readFile(join(dir, 'd.vhd'));
    fixed = await readFile(join(dir, 'f.vhd'));
    dyn = Number(dynamic.readBigUInt64BE(16));
    bat = Number(dynamic.readBigUInt64BE(dyn + 16));
  });

  it('a BAT entry pointing past the end of the file names the entry', async () => {
    const bad = Buffer.from(dynamic);
    bad.writeUInt32BE(0x100000, bat);
    const err = await refusal(bad);
    assert.match(err.message, /past its end/);
    assert.equal(err.offset, bat);
  });

  it('a BAT claiming 100 million entries in a small file: read a page at a time, never allocated whole', async () => {
    const bad = Buffer.from(dynamic);
    bad.writeUInt32BE(100_000_000, dyn + 28);
    const source = new MemorySource(bad, 'big-bat.vhd');
    const image = await VpcImage.open(source);
    try {
      await image.read(0, image.size);
      assert.ok(source.largestRead <= 2 * MiB + 512, `largest read ${source.largestRead}`);
    } finally {
      await image.close();
    }
  });

  it('footer checksum, block size, disk type and size limits', async () => {
    const bad = Buffer.from(dynamic);
    bad[40] ^= 1;
    assert.match((await refusal(bad)).message, /footer checksum/);
    const odd = Buffer.from(dynamic);
    odd.writeUInt32BE(3 * 512, dyn + 32);
    assert.match((await refusal(odd)).message, /block size 1536 is not a power of two/);
    assert.match((await refusal(editFooter(dynamic, (f) => f.writeUInt32BE(9, 60)))).message, /unknown VHD disk type 9/);
    const huge = editFooter(dynamic, (f) => {
      f.write('win ', 28, 'latin1');
      f.writeBigUInt64BE(1n << 60n, 48);
    });
    assert.match((await refusal(huge)).message, /larger than the 2040 GiB|too small for the virtual size/);
  });

  it('truncated: a block that starts past the end of the file', async () => {
    const secondBlock = [...Array(4).keys()].map((i) => dynamic.readUInt32BE(bat + i * 4)).filter((e) => e !== 0xffffffff)[1];
    const err = await refusal(dynamic.subarray(0, secondBlock * 512));
    assert.match(err.message, /past its end/);
    assert.match((await refusal(dynamic.subarray(0, 300))).message, /too short/);
  });

  it(`${CASES} mutated images read or are refused with typed errors`, async () => {
    const runSeed = Number(process.env.GUESTLENS_FUZZ_SEED ?? Date.now() % 0x7fffffff);
    const result = await fuzzSeeds(await makeFormatSeeds('vpc', dir), CASES, dir, runSeed);
    console.log(`      vpc fuzz run seed ${runSeed}: ${result.read} read, ${result.refused} refused; against qemu-img: ${JSON.stringify(result.verdicts)}`);
  });
});
