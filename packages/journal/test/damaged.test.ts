/**
 * Damaged and hostile files. journalctl is the oracle where it reads them:
 * a file cut short (both refuse it while its header claims more; with the
 * header made to match, both read up to the cut), an entry array chain
 * broken (a bad array, a link back: a cycle), an entry array item pointing
 * at garbage. Then a bounded mutation fuzzer in memory: every failure is a
 * typed JournalError, nothing hangs (a read budget), and a decompression
 * bomb stops at the limit.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isGuestlensError } from '@guestlens/block';
import { scratchDir } from '../../../test/support/scratch.ts';
import { MemorySource, ReadBudgetExceeded } from '../../../test/support/memorySource.ts';
import { Prng } from '../../../test/support/prng.ts';
import { haveJournalTools, variedEntries, writeJournal } from './support/fixtures.ts';
import { assertSameBytes, closeFiles, journalctl, openFiles, ours } from './support/oracle.ts';
import { JournalFile, JournalQuery, JournalPrinter, JournalTruncatedError, type OutputMode } from '@guestlens/journal';

/** The offsets of the global entry array chain of a file image. */
function globalArrays(buf: Buffer): number[] {
  const out: number[] = [];
  for (let p = Number(buf.readBigUInt64LE(176)); p !== 0 && out.length < 64; p = Number(buf.readBigUInt64LE(p + 16))) out.push(p);
  return out;
}

async function sameAsJournalctl(path: string, modes: OutputMode[] = ['short', 'export']): Promise<void> {
  const files = await openFiles([path]);
  try {
    for (const mode of modes) {
      const theirs = await journalctl([`--file=${path}`, '-o', mode]);
      assert.equal(theirs.exitCode, 0, theirs.stderr);
      assertSameBytes(await ours(files, mode), theirs.stdout, `${path} -o ${mode}`);
    }
  } finally {
    await closeFiles(files);
  }
}

describe('journal: damaged files', function () {
  this.timeout(300000);
  const reason = haveJournalTools();
  let original: Buffer;
  let dir: string;

  before(async function () {
    if (reason) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
    dir = scratchDir('journal-damaged');
    const path = join(dir, 'good.journal');
    await writeJournal(path, variedEntries(), { compact: false });
    original = readFileSync(path);
  });

  it('a file cut short: refused with a typed error while its header claims more (journalctl refuses it too)', async () => {
    const path = join(dir, 'cut.journal');
    writeFileSync(path, original.subarray(0, 40000));
    const theirs = await journalctl([`--file=${path}`]);
    assert.notEqual(theirs.exitCode, 0);
    await assert.rejects(openFiles([path]), (err: unknown) => err instanceof JournalTruncatedError && /cut short/.test((err as Error).message));
  });

  it('a file cut in the middle of an object, its header matching: read up to the cut, as journalctl reads it', async () => {
    const path = join(dir, 'cut-mid.journal');
    // Inside the fourth entry array of the chain: that object and everything after it are cut off.
    const cut = globalArrays(original)[3] + 43;
    const b = Buffer.from(original.subarray(0, cut));
    const headerSize = Number(b.readBigUInt64LE(88));
    b.writeBigUInt64LE(BigInt(cut - headerSize), 96); // arena_size
    b.writeBigUInt64LE(BigInt(Math.floor((cut - 16) / 8) * 8), 136); // tail_object_offset within the cut file, aligned
    writeFileSync(path, b);
    await sameAsJournalctl(path);
    const files = await openFiles([path]);
    const printed = (await ours(files, 'export')).toString().split('\n\n').length - 1;
    assert.ok(printed > 20 && printed < 240, `${printed} entries read`);
    assert.ok(files[0].warnings.length > 0);
    await closeFiles(files);
  });

  it('an entry array with a bad type: the chain ends there, as in journalctl', async () => {
    const path = join(dir, 'bad-array.journal');
    const b = Buffer.from(original);
    const arrays = globalArrays(b);
    assert.ok(arrays.length >= 4, `${arrays.length} arrays`);
    b[arrays[2]] = 0x63;
    writeFileSync(path, b);
    await sameAsJournalctl(path);
  });

  it('an entry array that links back (a cycle): read once, then stop, as journalctl does', async () => {
    const path = join(dir, 'cycle.journal');
    const b = Buffer.from(original);
    const arrays = globalArrays(b);
    b.writeBigUInt64LE(BigInt(arrays[0]), arrays[3] + 16);
    writeFileSync(path, b);
    await sameAsJournalctl(path);
    const files = await openFiles([path]);
    const printed = (await ours(files, 'export')).toString().split('\n\n').length - 1;
    assert.ok(printed > 0 && printed < 240, `${printed} entries read`);
    assert.ok(files[0].warnings.some((w) => /links back/.test(w)), files[0].warnings.join('; '));
    await closeFiles(files);
  });

  it('a header claiming absurd n_entries (2^64-1, 2^40, twice the real count): every walk bounded, output as journalctl prints it, the empty items past the real entries warned of in a few lines', async () => {
    // Found by the fuzzer: stepping back from the end bisected over n_entries, which never ended for 2^64-1.
    for (const [name, claimed] of [['ones', 0xffff_ffff_ffff_ffffn], ['tera', 1n << 40n], ['double', 480n]] as const) {
      const path = join(dir, `n-entries-${name}.journal`);
      const b = Buffer.from(original);
      b.writeBigUInt64LE(claimed, 152); // n_entries
      writeFileSync(path, b);
      await sameAsJournalctl(path);
      const files = await openFiles([path]);
      try {
        const theirs = await journalctl([`--file=${path}`, '-n', '5', '-o', 'export']);
        assertSameBytes(await ours(files, 'export', { lines: 5 }), theirs.stdout, `${path} -n 5`);
        if (name !== 'double') assert.ok(files[0].warnings.some((w) => w.startsWith(`the header claims ${claimed} entries, more than its `)), files[0].warnings.slice(0, 3).join('; '));
        await ours(files, 'export');
        // Each empty item past the real entries is a skip: ten are listed, then one line for the rest.
        assert.equal(files[0].warnings.filter((w) => /^entry \d+ is skipped: .*is empty/.test(w)).length, 10, files[0].warnings.join('\n'));
        assert.ok(files[0].warnings.some((w) => /more entries that cannot be read are skipped, not listed each/.test(w)), files[0].warnings.join('\n'));
      } finally {
        await closeFiles(files);
      }
    }
  });

  it('an entry array item pointing at garbage: that entry is skipped, as in journalctl', async () => {
    const path = join(dir, 'bad-item.journal');
    const b = Buffer.from(original);
    const arrays = globalArrays(b);
    b.writeBigUInt64LE(12345n, arrays[1] + 24); // unaligned
    b.writeBigUInt64LE(BigInt(arrays[1]), arrays[2] + 24 + 8); // points at an ENTRY_ARRAY, not an ENTRY
    writeFileSync(path, b);
    await sameAsJournalctl(path);
  });
});

describe('journal: hostile input (bounded mutation fuzzer)', function () {
  this.timeout(300000);
  const reason = haveJournalTools();
  let base: Buffer;

  before(async function () {
    if (reason) this.skip();
    const path = join(scratchDir('journal-fuzz'), 'small.journal');
    await writeJournal(path, variedEntries(40));
    const full = readFileSync(path);
    // Only the used part: header + arena up to the tail object (the rest is preallocated zeros).
    const tail = Number(full.readBigUInt64LE(136));
    const end = tail + Number(full.readBigUInt64LE(tail + 8)) + 64;
    base = Buffer.from(full.subarray(0, end));
    base.writeBigUInt64LE(BigInt(end - Number(base.readBigUInt64LE(88))), 96);
  });

  it('2000 mutated files: typed errors only, bounded reads, no hang', async () => {
    const rng = new Prng(0x6a6f75);
    let typed = 0;
    for (let c = 0; c < 2000; c++) {
      const src = new MemorySource(Buffer.from(base), `fuzz-${c}.journal`, base.length, 512, 20000);
      const mutations = 1 + rng.below(8);
      for (let k = 0; k < mutations; k++) {
        // Bias towards the header and object headers: that is where offsets live.
        const at = rng.below(4) === 0 ? rng.below(272) : rng.below(base.length);
        const unit = Math.floor(at / 512) * 512;
        const bytes = Buffer.from(src.unit(unit / 512));
        const kind = rng.below(3);
        if (kind === 0) bytes[at - unit] = rng.below(256);
        else if (kind === 1) bytes[at - unit] ^= 1 << rng.below(8);
        else bytes.fill(0xff, at - unit, Math.min(512, at - unit + 1 + rng.below(8)));
        src.patch(unit, bytes);
      }
      try {
        const file = await JournalFile.open(src, { maxDataBytes: 1 << 20, live: c % 2 === 0 });
        const q = await JournalQuery.open([file], c % 3 === 0 ? { matches: ['PRIORITY=3'] } : c % 3 === 1 ? { lines: 5 } : {});
        const printer = new JournalPrinter((['short', 'json', 'export', 'cat'] as OutputMode[])[c % 4]);
        for await (const e of q.entries()) await printer.print(e);
      } catch (err) {
        if (err instanceof ReadBudgetExceeded) assert.fail(`case ${c}: ${err.message}`);
        assert.ok(isGuestlensError(err), `case ${c}: an untyped error: ${(err as Error).stack}`);
        typed++;
      }
    }
    assert.ok(typed > 50, `only ${typed} cases failed: the fuzzer does not reach the parser`);
  });

  it('a decompression bomb stops at maxDataBytes with a typed error', async () => {
    // An LZ4 object declaring 1 GiB: refused before anything that large is allocated.
    const b = Buffer.from(base);
    const headerSize = Number(b.readBigUInt64LE(88));
    const tail = Number(b.readBigUInt64LE(136));
    const payloadAt = (b.readUInt32LE(12) & 16) !== 0 ? 72 : 64;
    let target = -1;
    for (let p = headerSize; p <= tail; p += Math.ceil(Number(b.readBigUInt64LE(p + 8)) / 8) * 8) {
      if (b[p] === 1 && Number(b.readBigUInt64LE(p + 8)) - payloadAt > 16) {
        target = p;
        break;
      }
    }
    assert.ok(target > 0);
    b[target + 1] = 2; // LZ4
    b.writeUInt32LE(b.readUInt32LE(12) | 2, 12);
    b.writeBigUInt64LE(1n << 30n, target + payloadAt);
    const file = await JournalFile.open(new MemorySource(b, 'bomb.journal'), { maxDataBytes: 1 << 20 });
    await assert.rejects(file.data(target), (err: unknown) => isGuestlensError(err) && (err as { code: string }).code === 'EFBIG');
  });
});
