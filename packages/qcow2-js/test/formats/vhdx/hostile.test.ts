/**
 * vhdx hostile input: each structure's checks (headers, region table,
 * metadata, BAT, log) refuse with a typed error naming the image, in bounded
 * time and memory; then mutated images in memory, the CRC-32C of headers,
 * region tables and log entries mended half the time so the mutations reach
 * what lies behind them.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Qcow2Error, VhdxImage } from '../../../src/index.ts';
import { guidBytes, guidString } from '../../../src/formats/common/guid.ts';
import { MemorySource } from '../../../../../test/support/memorySource.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { makeRaw, MiB, qemuImg } from '../../support/qemu.ts';
import { fuzzSeeds } from '../../support/formatFuzzer.ts';
import { makeFormatSeeds } from '../../support/formatSeeds.ts';
import { batEntry, layoutOf, LOG_GUID, mendAll, mendHeader, ofBuffer, setBatEntry, withLog } from './build.ts';

const CASES = Number(process.env.GUESTLENS_FUZZ_CASES ?? 250);
const KiB = 1024;

async function refusal(data: Buffer): Promise<Qcow2Error> {
  try {
    const image = await VhdxImage.open(new MemorySource(data, 'bad.vhdx'));
    const end = Math.min(image.size, 16 * MiB);
    for (let off = 0; off < end; off += MiB) await image.read(off, Math.min(MiB, end - off));
    await image.close();
  } catch (err) {
    assert.ok(err instanceof Qcow2Error, `expected a typed error, got ${String(err)}`);
    assert.match(err.message, /^bad\.vhdx: /);
    return err;
  }
  assert.fail('read without error');
}

describe('vhdx: hostile images', function () {
  this.timeout(300_000);
  let dir: string;
  let dynamic: Buffer;
  let fixed: Buffer;

  before(async () => {
    dir = scratchDir('vhdx-hostile');
    const raw = join(dir, 'source.raw');
    await makeRaw(raw, 3 * MiB, [[0, MiB + 4096], [2 * MiB + 100, 100_000]], 7);
    await qemuImg(['convert', '-q', '-O', 'vhdx', '-o', 'block_size=1M', raw, join(dir, 'd.vhdx')]);
    await qemuImg(['convert', '-q', '-O', 'vhdx', '-o', 'block_size=1M,subformat=fixed', raw, join(dir, 'f.vhdx')]);
    dynamic = await readFile(join(dir, 'd.vhdx'));
    fixed = await readFile(join(dir, 'f.vhdx'));
  });

  const edited = (edit: (b: Buffer) => void, mend = true): Buffer => {
    const b = Buffer.from(dynamic);
    edit(b);
    if (mend) mendAll(ofBuffer(b));
    return b;
  };
  const metadataItem = (b: Buffer, guid: string): number => {
    const md = layoutOf(b).metadataOffset;
    for (let i = 0; i < b.readUInt16LE(md + 10); i++) {
      const p = md + 32 + i * 32;
      if (guidString(b, p) === guid) return md + b.readUInt32LE(p + 16);
    }
    throw new Error(`no item ${guid}`);
  };

  it('headers: neither valid, or two valid ones with one sequence number that differ', async () => {
    assert.match((await refusal(edited((b) => { b[64 * KiB + 20] ^= 1; b[128 * KiB + 20] ^= 1; }, false))).message, /no valid VHDX header/);
    assert.match(
      (await refusal(edited((b) => { b.writeBigUInt64LE(5n, 64 * KiB + 8); b.writeBigUInt64LE(5n, 128 * KiB + 8); b[64 * KiB + 20] ^= 1; }))).message,
      /same sequence number 5 but differ/,
    );
    assert.match((await refusal(edited((b) => b.writeUInt16LE(1, layoutOf(b).header + 64)))).message, /log version 1/);
  });

  it('region table: checksum, entry count, overlaps, an unknown required region', async () => {
    assert.match((await refusal(edited((b) => { b[192 * KiB + 40] ^= 1; }, false))).message, /region table CRC-32C/);
    assert.match((await refusal(edited((b) => b.writeUInt32LE(3000, 192 * KiB + 8)))).message, /3000 entries/);
    assert.match((await refusal(edited((b) => b.writeBigUInt64LE(BigInt(layoutOf(b).batOffset), 192 * KiB + 16 + 32 + 16)))).message, /overlaps/);
    assert.match(
      (await refusal(edited((b) => {
        const p = 192 * KiB + 16 + 2 * 32;
        guidBytes('01234567-89ab-cdef-0123-456789abcdef').copy(b, p);
        b.writeBigUInt64LE(BigInt(b.length + MiB), p + 16);
        b.writeUInt32LE(MiB, p + 24);
        b.writeUInt32LE(1, p + 28);
        b.writeUInt32LE(3, 192 * KiB + 8);
      }))).message,
      /requires region 01234567-89ab-cdef-0123-456789abcdef/,
    );
    // Found by the fuzzer: a metadata region shorter than its table's header was read past its end.
    const shortMetadata = edited((b) => {
      for (let p = 192 * KiB + 16; p < 192 * KiB + 16 + b.readUInt32LE(192 * KiB + 8) * 32; p += 32) {
        if (Number(b.readBigUInt64LE(p + 16)) === layoutOf(b).metadataOffset) b.writeUInt32LE(8, p + 24);
      }
    });
    assert.match((await refusal(shortMetadata)).message, /metadata region at \d+ is 8 bytes, too small for a metadata table/);
  });

  it('metadata: block size, logical sector size, a size that is not whole sectors, a BAT too small', async () => {
    assert.match((await refusal(edited((b) => b.writeUInt32LE(3 * MiB, metadataItem(b, 'caa16737-fa36-4d43-b3b6-33f0aa44e76b'))))).message, /block size 3145728/);
    assert.match((await refusal(edited((b) => b.writeUInt32LE(1024, metadataItem(b, '8141bf1d-a96f-4709-ba47-f233a8faab5f'))))).message, /logical sector size 1024/);
    assert.match((await refusal(edited((b) => b.writeBigUInt64LE(3n * 1048576n + 100n, metadataItem(b, '2fa54224-cd1b-4876-b211-5dbed83bf4b8'))))).message, /not a multiple of the logical sector size/);
    assert.match((await refusal(edited((b) => b.writeBigUInt64LE(1n << 44n, metadataItem(b, '2fa54224-cd1b-4876-b211-5dbed83bf4b8'))))).message, /too small for .* entries/);
  });

  it('BAT: a block past the end of the file, one inside the metadata, a partially present block in a disk without a parent, a reserved state', async () => {
    const layout = layoutOf(fixed);
    const at = (edit: (b: Buffer) => void) => {
      const b = Buffer.from(fixed);
      edit(b);
      return b;
    };
    const past = await refusal(at((b) => setBatEntry(b, layout, 1, 6, Math.ceil(b.length / MiB) * MiB + 5 * MiB)));
    assert.match(past.message, /past its end/);
    assert.equal(past.offset, layout.batOffset + 8);
    assert.match((await refusal(at((b) => setBatEntry(b, layout, 0, 6, layout.metadataOffset)))).message, /inside the region/);
    assert.match((await refusal(at((b) => setBatEntry(b, layout, 0, 7, batEntry(b, layout, 0).offset)))).message, /partially present in a disk without a parent/);
    assert.match((await refusal(at((b) => setBatEntry(b, layout, 2, 4)))).message, /reserved block state 4/);
  });

  it('log: one too big to replay in memory is named, with what to do', async () => {
    const b = withLog(dynamic, [], LOG_GUID);
    const h = layoutOf(b).header;
    b.writeUInt32LE(128 * MiB, h + 68);
    mendHeader(b, h);
    const err = await refusal(b);
    assert.match(err.message, /must be replayed .* too large to replay in memory .*qemu-img check -r all/);
  });

  it(`${CASES} mutated images read or are refused with typed errors`, async () => {
    const runSeed = Number(process.env.GUESTLENS_FUZZ_SEED ?? Date.now() % 0x7fffffff);
    const result = await fuzzSeeds(await makeFormatSeeds('vhdx', dir), CASES, dir, runSeed);
    console.log(`      vhdx fuzz run seed ${runSeed}: ${result.read} read, ${result.refused} refused; against qemu-img: ${JSON.stringify(result.verdicts)}`);
  });
});
