/**
 * The QEMU reader: images in formats guestlens has no reader for (qed,
 * parallels, LUKS with a passphrase) read through qemu-storage-daemon and
 * NBD (@guestlens/nbd), by default or with --reader qemu, with the same
 * answers as the raw disk they were converted from; the backing policy still
 * judges what an image names; no daemon or private directory is left behind
 * on any exit path (normal, error, SIGINT, SIGTERM); the images are unchanged.
 */
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDisk } from './support/guestDisk.ts';
import { guardImages } from './support/imageGuard.ts';
import { guestlens, repoRoot, sh, shLuks } from './support/run.ts';
import { waitFor } from './support/processes.ts';
import { spawn } from 'node:child_process';
import { runTmpDir, scratchDir } from './support/scratch.ts';

describe('guestlens --reader qemu (qemu-storage-daemon over NBD)', function () {
  this.timeout(180000);
  const dir = scratchDir('reader-qemu');
  let raw: string;
  const images: Record<string, string> = {};
  const keyFile = join(dir, 'key');

  const leftovers = () => readdirSync(runTmpDir()).filter((f) => f.startsWith('guestlens-nbd-'));
  const dfRows = (out: string) => out.trim().split('\n').slice(1).map((l) => l.replace(/^\S+?:/, '').split(/\s+/).join(' '));

  before(async () => {
    const d = await buildDisk('qr', 'gpt', [{ sizeMiB: 24, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'qemuread'], files: { 'etc/motd': 'read by QEMU\n', 'var/data.bin': Buffer.alloc(3 << 20, 9) } } }]);
    raw = d.raw;
    for (const format of ['qed', 'parallels']) {
      images[format] = join(dir, `disk.${format}`);
      await sh('qemu-img', ['convert', '-q', '-f', 'raw', '-O', format, raw, images[format]]);
    }
    images.luks = join(dir, 'disk.luks');
    writeFileSync(keyFile, 'correct horse\n');
    await shLuks('qemu-img', ['convert', '-q', '--object', 'secret,id=s0,data=correct horse', '-f', 'raw', '-O', 'luks', '-o', 'key-secret=s0,iter-time=10', raw, images.luks]);
  });

  it('df and ls read qed, parallels and LUKS (with --key-file) as the raw disk reads', async () => {
    const expected = await guestlens(['df', raw]);
    assert.equal(expected.exitCode, 0, expected.stderr);
    await guardImages(Object.values(images), async () => {
      for (const [format, image] of Object.entries(images)) {
        const r = await guestlens(['df', '--reader', 'qemu', ...(format === 'luks' ? ['--key-file', keyFile] : []), image]);
        assert.equal(r.exitCode, 0, `${format}: ${r.stderr}`);
        assert.deepEqual(dfRows(r.stdout), dfRows(expected.stdout), format);
      }
      const cat = await guestlens(['cat', '--reader', 'qemu', images.qed, '/etc/motd']);
      assert.equal(cat.exitCode, 0, cat.stderr);
      assert.equal(cat.stdout, 'read by QEMU\n');
      const ls = await guestlens(['ls', '--reader', 'qemu', images.parallels, '/var']);
      assert.equal(ls.stdout, 'data.bin\n');
    });
    assert.deepEqual(leftovers(), [], 'no qemu-storage-daemon directory left');
    const daemons = await sh('sh', ['-c', `pgrep -f '[q]emu-storage-daemon.*${runTmpDir()}' || true`]);
    assert.equal(daemons.trim(), '', 'no qemu-storage-daemon left');
  });

  it('without --reader, a qed image is read through QEMU all the same; --reader native refuses it by name', async () => {
    const expected = await guestlens(['df', raw]);
    const r = await guestlens(['df', images.qed]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(dfRows(r.stdout), dfRows(expected.stdout));
    const native = await guestlens(['df', '--reader', 'native', images.qed]);
    assert.equal(native.exitCode, 1);
    assert.match(native.stderr, /is a QED image; guestlens has no reader of its own for qed images: guestlens reads them through QEMU .* unless --reader native is given/);
    assert.deepEqual(leftovers(), []);
  });

  it('image info says who reads each image; image cat --reader qemu gives the bytes the native reader gives', async () => {
    const qcow2 = join(dir, 'disk.qcow2');
    await sh('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
    const reader = async (args: string[]) => (JSON.parse((await guestlens(['image', 'info', '--json', ...args])).stdout) as { reader?: string }[])[0].reader;
    assert.equal(await reader([qcow2]), 'native');
    assert.equal(await reader(['--reader', 'qemu', qcow2]), 'qemu');
    assert.equal(await reader([images.qed]), 'qemu');
    assert.equal(await reader(['--reader', 'native', images.qed]), 'none');
    const hash = async (args: string) => (await sh('sh', ['-c', `cli/bin/guestlens image cat ${args} | sha256sum`], { cwd: repoRoot })).split(' ')[0];
    assert.equal(await hash(`--reader qemu ${qcow2}`), await hash(qcow2));
    assert.equal(await hash(`--key-file ${keyFile} ${images.luks}`), (await sh('sha256sum', [raw])).split(' ')[0]);
    assert.deepEqual(leftovers(), []);
  });

  const daemonsOfThisRun = async () => (await sh('sh', ['-c', `pgrep -f '[q]emu-storage-daemon.*${runTmpDir()}' || true`])).trim();

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} to tail -f (its own handler) and to a cat stalled on a full pipe (none): the daemon and its directory are gone`, async () => {
      // tail -f: stops following, closes the guest (and with it the daemon), exits 0.
      const tail = spawn(join(repoRoot, 'cli/bin/guestlens'), ['tail', '-f', '--reader', 'qemu', images.qed, '/etc/motd'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      tail.stdout.on('data', (c: Buffer) => (out += c.toString()));
      await waitFor('tail -f printing the file', () => out.includes('read by QEMU'), 60000);
      assert.notEqual(await daemonsOfThisRun(), '', 'a daemon runs while tail follows');
      const tailExit = new Promise<number | null>((r) => tail.once('exit', (code) => r(code)));
      tail.kill(signal);
      assert.equal(await tailExit, 0, 'tail exits 0 when told to stop');
      await waitFor('the daemon gone', async () => (await daemonsOfThisRun()) === '', 10000);
      assert.deepEqual(leftovers(), []);

      // cat of a 3 MiB file into a pipe nobody reads: blocked in a write when the signal comes; the signal still ends it, daemon first.
      const cat = spawn(join(repoRoot, 'cli/bin/guestlens'), ['cat', '--reader', 'qemu', images.parallels, '/var/data.bin'], { stdio: ['ignore', 'pipe', 'pipe'] });
      await waitFor('cat reading through a daemon', async () => (await daemonsOfThisRun()) !== '', 60000);
      await new Promise((r) => setTimeout(r, 500));
      const catExit = new Promise<string | null>((r) => cat.once('exit', (code, sig) => r(sig ?? String(code))));
      cat.kill(signal);
      assert.equal(await catExit, signal, 'the process ends by the signal, as a process without a handler does');
      cat.stdout.destroy();
      await waitFor('the daemon gone', async () => (await daemonsOfThisRun()) === '', 10000);
      assert.deepEqual(leftovers(), []);
    });
  }

  it('LUKS: no passphrase or a wrong one is a clear error; --key-file alone is a usage error', async () => {
    const none = await guestlens(['df', '--reader', 'qemu', images.luks]);
    assert.equal(none.exitCode, 1);
    assert.match(none.stderr, /disk\.luks: the image is encrypted and needs a passphrase: give --key-file FILE/);
    const badKey = join(dir, 'bad');
    writeFileSync(badKey, 'wrong\n');
    const wrong = await guestlens(['df', '--reader', 'qemu', '--key-file', badKey, images.luks]);
    assert.equal(wrong.exitCode, 1);
    assert.match(wrong.stderr, /the LUKS passphrase is wrong/);
    const usage = await guestlens(['df', '--reader', 'native', '--key-file', keyFile, images.luks]);
    assert.equal(usage.exitCode, 2);
    assert.match(usage.stderr, /--key-file: encrypted images are read by QEMU; leave out --reader native/);
    assert.deepEqual(leftovers(), []);
  });

  it('the backing policy judges what a qed image names before QEMU opens it', async () => {
    const elsewhere = scratchDir('elsewhere');
    const base = join(elsewhere, 'base.raw');
    await sh('cp', [raw, base]);
    const top = join(dir, 'top.qed');
    await sh('qemu-img', ['create', '-q', '-f', 'qed', '-b', base, '-F', 'raw', top]);
    const refused = await guestlens(['df', '--reader', 'qemu', '--backing', 'same-dir', top]);
    assert.equal(refused.exitCode, 1);
    assert.match(refused.stderr, /top\.qed: names the backing file .*base\.raw, which --backing same-dir refuses/);
    const allowed = await guestlens(['df', '--reader', 'qemu', top]);
    assert.equal(allowed.exitCode, 0, allowed.stderr);
  });
});
