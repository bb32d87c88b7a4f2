/**
 * --reader qemu: images in formats guestlens has no reader for (qed,
 * parallels, LUKS with a passphrase) read through qemu-storage-daemon and
 * NBD (@guestlens/nbd), with the same answers as the raw disk they were
 * converted from; the backing policy still judges what an image names; no
 * daemon or private directory is left behind; the images are unchanged.
 */
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDisk } from './support/guestDisk.ts';
import { guardImages } from './support/imageGuard.ts';
import { guestlens, sh, shLuks } from './support/run.ts';
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

  it('without --reader qemu, a qed image is refused by name and told about it', async () => {
    const r = await guestlens(['df', images.qed]);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /is a QED image; guestlens cannot read qed images yet: give --reader qemu/);
  });

  it('LUKS: no passphrase or a wrong one is a clear error; --key-file alone is a usage error', async () => {
    const none = await guestlens(['df', '--reader', 'qemu', images.luks]);
    assert.equal(none.exitCode, 1);
    assert.match(none.stderr, /disk\.luks: the image is encrypted and needs a passphrase: give --key-file FILE/);
    const badKey = join(dir, 'bad');
    writeFileSync(badKey, 'wrong\n');
    const wrong = await guestlens(['df', '--reader', 'qemu', '--key-file', badKey, images.luks]);
    assert.equal(wrong.exitCode, 1);
    assert.match(wrong.stderr, /the LUKS passphrase is wrong/);
    const usage = await guestlens(['df', '--key-file', keyFile, images.luks]);
    assert.equal(usage.exitCode, 2);
    assert.match(usage.stderr, /--key-file: encrypted images are read by QEMU; give --reader qemu too/);
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
