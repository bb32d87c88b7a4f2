/**
 * openWithQemu against real qemu-storage-daemon, on images qemu-img made:
 * every byte equals `qemu-img convert -O raw`, extents agree with
 * `qemu-img map`, the image is untouched, and the daemon and its directory
 * are gone after close and after every failed start.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, readdirSync, statSync, openSync, readSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extents } from '@guestlens/block';
import { openWithQemu, liveDaemons, DAEMON_DIR_PREFIX, NbdSource, PassphraseError, ImageAccessError, QemuDaemonError, NbdClosedError } from '@guestlens/nbd';
import { scratchDir } from '../../../test/support/scratch.ts';
import { sh, shLuks } from '../../../test/support/run.ts';
import { snapshotImage, assertImageUnchanged } from '../../../test/support/imageGuard.ts';
import { qemuMapRuns, type KindRun } from '../../../test/support/qemuImgCompare.ts';
import { Prng } from '../../../test/support/prng.ts';
import { MiB, PASS, makeImage, makeLuks, rawOf, sha256, sha256Source, assertDaemonGone, dataRuns, pgrep } from './helpers.ts';

/** Private daemon directories left in TMPDIR. */
function daemonDirs(): string[] {
  return readdirSync(tmpdir()).filter((n) => n.startsWith(DAEMON_DIR_PREFIX));
}

interface Case {
  format: string;
  size: number;
  image: string;
  raw: string;
  secret?: string;
}

/** Compare a source with the reference raw file: the whole image by hash, then small unaligned reads, some concurrent. */
async function compareBytes(source: NbdSource, c: Case): Promise<void> {
  const ref = readFileSync(c.raw);
  assert.equal(source.size, c.size);
  assert.equal(await sha256Source(source), sha256(ref), `${c.format}: whole-image hash`);
  const rng = new Prng(7);
  const ranges: Array<[number, number]> = [];
  for (const [at, n] of dataRuns(c.size)) ranges.push([at, Math.min(n, 1000)], [Math.max(0, at - 3), 17], [Math.min(c.size - 1, at + n - 1), 1]);
  for (let i = 0; i < 40; i++) {
    const at = rng.below(c.size - 1);
    ranges.push([at, 1 + rng.below(Math.min(9000, c.size - at))]);
  }
  const got = await Promise.all(ranges.map(([at, n]) => source.read(at, n)));
  ranges.forEach(([at, n], i) => assert.ok(got[i].equals(ref.subarray(at, at + n)), `${c.format}: ${n} bytes at ${at}`));
  // readInto at an offset of a larger buffer.
  const buf = Buffer.alloc(4900, 0xee);
  await source.readInto(buf, 100, c.size - 4800, 4800);
  assert.ok(buf.subarray(100).equals(ref.subarray(c.size - 4800)));
  assert.equal(buf[99], 0xee);
}

describe('openWithQemu (qemu-storage-daemon)', function () {
  const cases: Record<string, Case> = {};
  let dir: string;

  before(async function () {
    dir = scratchDir('nbd-images');
    const qedSize = 128 * MiB;
    const qed = await makeImage(dir, 'qed', qedSize, 11);
    const par = await makeImage(dir, 'parallels', 32 * MiB, 12);
    const luks = await makeLuks(dir, 16 * MiB);
    cases.qed = { format: 'qed', size: qedSize, image: qed, raw: await rawOf(dir, qed, 'qed') };
    cases.parallels = { format: 'parallels', size: 32 * MiB, image: par, raw: await rawOf(dir, par, 'parallels') };
    cases.luks = { format: 'luks', size: 16 * MiB, image: luks, raw: await rawOf(dir, luks, 'luks', PASS), secret: PASS };
  });

  for (const format of ['qed', 'parallels', 'luks']) {
    it(`reads a ${format} image byte for byte as qemu-img convert does, and leaves it unchanged`, async function () {
      const c = cases[format];
      const before = await snapshotImage(c.image);
      // Format detection for two of them, an explicit format for the other.
      const source = await openWithQemu(c.image, { secret: c.secret, format: format === 'parallels' ? 'parallels' : undefined });
      const [daemon] = liveDaemons();
      assert.ok(daemon, 'a daemon runs while the source is open');
      assert.equal(statSync(daemon.dir).mode & 0o777, 0o700);
      if (c.secret) assert.equal(statSync(join(daemon.dir, 'secret')).mode & 0o777, 0o600);
      assert.ok(!readFileSync(`/proc/${daemon.pid}/cmdline`, 'utf8').includes(PASS), 'the passphrase is not on the command line');
      try {
        assert.equal(source.name, c.image);
        assert.ok(source.info.readOnly, 'exported read-only');
        await compareBytes(source, c);
      } finally {
        await source.close();
      }
      await assertDaemonGone(daemon);
      assert.deepEqual(liveDaemons(), []);
      await assertImageUnchanged(before);
      await assert.rejects(source.read(0, 1), NbdClosedError);
      await source.close(); // twice is fine
    });
  }

  it('extent() agrees with qemu-img map on holes and data (qed)', async function () {
    const c = cases.qed;
    const source = await openWithQemu(c.image);
    try {
      const ours: KindRun[] = [];
      for await (const e of extents(source)) {
        const prev = ours[ours.length - 1];
        if (prev && prev.kind === e.kind) prev.length += e.length;
        else ours.push({ start: e.offset, length: e.length, kind: e.kind });
      }
      assert.deepEqual(ours, await qemuMapRuns(c.image, 'qed'));
      assert.ok(ours.some((r) => r.kind === 'zero') && ours.some((r) => r.kind === 'data'));
      // An extent from the middle of a run, bounded by the length asked.
      const hole = ours.find((r) => r.kind === 'zero')!;
      assert.deepEqual(await source.extent(hole.start + 1000, 5000), { offset: hole.start + 1000, length: 5000, kind: 'zero' });
      await source.refresh();
      assert.equal((await source.extent(0, 10)).kind, 'data');
    } finally {
      await source.close();
    }
  });

  it('a wrong LUKS passphrase is a clear error, and no daemon or directory is left', async function () {
    const before = await snapshotImage(cases.luks.image);
    const err = await openWithQemu(cases.luks.image, { secret: 'wrong' }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof PassphraseError, String(err));
    assert.match(err.message, /disk\.luks: the LUKS passphrase is wrong \(QEMU: .*Invalid password/);
    assert.equal(err.code, 'EKEYREJECTED');
    assert.ok(err.userFacing);
    assert.ok(!err.message.includes('wrong'.repeat(2)) && !/\n\s+at /.test(err.message));
    assert.deepEqual(liveDaemons(), []);
    assert.deepEqual(await pgrep(join(tmpdir(), DAEMON_DIR_PREFIX)), [], 'no daemon of this run is left');
    assert.deepEqual(daemonDirs(), []);
    await assertImageUnchanged(before);
  });

  it('a LUKS image without a passphrase says one is needed', async function () {
    const err = await openWithQemu(cases.luks.image).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof PassphraseError, String(err));
    assert.match(err.message, /encrypted and needs a passphrase/);
    assert.deepEqual(liveDaemons(), []);
    assert.deepEqual(daemonDirs(), []);
  });

  it('a missing file is a clear error, before any daemon starts', async function () {
    const missing = join(dir, 'nope.qed');
    const err = await openWithQemu(missing).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ImageAccessError, String(err));
    assert.equal(err.message, `${missing}: no such file; check the path`);
    assert.equal(err.code, 'ENOENT');
    assert.deepEqual(liveDaemons(), []);
  });

  it('a wrong format is QEMU\'s refusal, and the daemon is gone', async function () {
    const err = await openWithQemu(cases.qed.image, { format: 'qcow2' }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof QemuDaemonError, String(err));
    assert.match(err.message, /disk\.qed: QEMU cannot open it as qcow2: Image is not in qcow2 format/);
    assert.deepEqual(liveDaemons(), []);
    assert.deepEqual(daemonDirs(), []);
    const bad = await openWithQemu(cases.qed.image, { format: 'file' }).then(() => undefined, (e: unknown) => e);
    assert.ok(bad instanceof QemuDaemonError);
    assert.match(bad.message, /format "file" is not one guestlens opens through QEMU/);
  });

  it('qcow2 with LUKS encryption, with the passphrase (and without: a clear error)', async function () {
    const image = join(dir, 'enc.qcow2');
    const secretFile = join(dir, 'enc-pass');
    writeFileSync(secretFile, PASS, { mode: 0o600 });
    const obj = `secret,id=s0,file=${secretFile}`;
    await shLuks('qemu-img', ['create', '-q', '-f', 'qcow2', '--object', obj, '-o', 'encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10', image, String(8 * MiB)]);
    await sh('qemu-io', ['--object', obj, '--image-opts', `driver=qcow2,encrypt.key-secret=s0,file.filename=${image}`, '-c', 'write -P 0x5a 5M 64k']);
    const source = await openWithQemu(image, { secret: PASS });
    try {
      assert.ok((await source.read(5 * MiB - 1, 3)).equals(Buffer.from([0, 0x5a, 0x5a])));
    } finally {
      await source.close();
    }
    const err = await openWithQemu(image).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof PassphraseError, String(err));
    assert.deepEqual(daemonDirs(), []);
  });

  it('without qemu-storage-daemon on PATH: says which package to install', async function () {
    const path = process.env.PATH;
    process.env.PATH = scratchDir('empty-path');
    try {
      const err = await openWithQemu(cases.qed.image, { format: 'qed' }).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof QemuDaemonError, String(err));
      assert.match(err.message, /disk\.qed: qemu-storage-daemon was not found on PATH; .*install the Debian package qemu-system-common$/);
      const err2 = await openWithQemu(cases.qed.image).then(() => undefined, (e: unknown) => e);
      assert.match(String(err2), /qemu-img was not found on PATH; .*qemu-utils$/);
    } finally {
      process.env.PATH = path;
    }
    assert.deepEqual(liveDaemons(), []);
    assert.deepEqual(daemonDirs(), []);
  });

  it('a raw file is opened as raw when the caller names no format', async function () {
    const source = await openWithQemu(cases.qed.raw);
    try {
      assert.equal(source.size, cases.qed.size);
      const [at, n] = dataRuns(cases.qed.size)[1];
      const expected = Buffer.alloc(n);
      const fd = openSync(cases.qed.raw, 'r');
      readSync(fd, expected, 0, n, at);
      closeSync(fd);
      assert.ok((await source.read(at, n)).equals(expected));
      assert.ok(expected.some((b) => b !== 0));
    } finally {
      await source.close();
    }
  });
});
