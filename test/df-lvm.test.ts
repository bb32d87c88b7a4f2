/**
 * guestlens df on a guest whose filesystems are LVM2 logical volumes
 * (test/support/lvmGuest.ts: GPT disk with an ext4 partition and a PV
 * partition, plus a whole-disk PV; linear, discontiguous, striped, raid1
 * and swap LVs), as qcow2 images, with the kernel as the oracle: every
 * number is the kernel's statfs of the LV's bytes gathered from the extents
 * lvs reports, named and ordered as virt-df names them (the partitions,
 * then the LVs by name; the guest "first.qcow2+" for two -a disks; swap
 * skipped). Files read through the guest API are the files written. Given
 * one of its two disks, the LVs on the other are named on stderr (exit 3)
 * and the rest listed. Then once against Debian's virt-df, byte for byte.
 */
import assert from 'node:assert/strict';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { openGuest, readGuestDf } from '../packages/inspect/src/index.ts';
import { dfHeader, dfRow } from '../cli/src/df/dfOutput.ts';
import { buildLvmGuest, type LvmGuest } from './support/lvmGuest.ts';
import { LvmFixture, gather, lvmUnavailable, scatter } from './support/lvm.ts';
import { kernelStatfs, loopMountUnavailable, withKernelMount } from './support/kernel.ts';
import { haveTool, toQcow2 } from './support/guestDisk.ts';
import { guardImages } from './support/imageGuard.ts';
import { guestlens, sh } from './support/run.ts';
import { scratchDir } from './support/scratch.ts';

type Kstat = Awaited<ReturnType<typeof kernelStatfs>>;
const text = { human: false, inodes: false, csv: false };
const csv = { human: false, inodes: false, csv: true };

describe('guestlens df on LVM logical volumes (kernel oracle)', function () {
  this.timeout(600000);
  let fx: LvmGuest;
  let disks: string[];
  /** device -> the kernel's statfs, in virt-df's order. */
  const kernel = new Map<string, Kstat>();

  before(async function () {
    const why = (await lvmUnavailable()) ?? (await loopMountUnavailable());
    if (why) {
      console.log(`      cannot build LVM guests here: ${why}`);
      this.skip();
    }
    fx = await buildLvmGuest();
    const dir = scratchDir('df-lvm');
    const boot = fx.first.partitions[0];
    kernel.set('/dev/sda1', await withKernelMount(fx.first.raw, { offset: boot.offset, sizelimit: boot.size }, (m) => kernelStatfs(m.dir)));
    for (const lv of ['discontig', 'linear', 'mirror', 'striped']) {
      const file = join(dir, `${lv}.img`);
      await gather(fx.layout, lv, file);
      kernel.set(`/dev/guestvg/${lv}`, await withKernelMount(file, {}, (m) => kernelStatfs(m.dir)));
    }
    disks = [await toQcow2(fx.first.raw, join(dir, 'first.qcow2')), await toQcow2(fx.second, join(dir, 'second.qcow2'))];
  });

  function expected(name: string, devices: string[], o = text): string {
    return dfHeader(o) + devices.map((d) => dfRow(name, d, kernel.get(d)!, o)).join('');
  }

  it('prints the kernel\'s numbers for the partition and every LV, named and ordered as virt-df (text and CSV)', async () => {
    const add = disks.flatMap((d) => ['-a', d]);
    for (const o of [text, csv]) {
      const r = await guardImages(disks, () => guestlens(['df', ...(o.csv ? ['--csv'] : []), ...add]));
      assert.equal(r.stderr, '');
      assert.equal(r.exitCode, 0);
      assert.equal(r.stdout, expected('first.qcow2+', [...kernel.keys()], o));
    }
  });

  it('--json carries each LV with its fstype, label and the kernel\'s numbers', async () => {
    const r = await guardImages(disks, () => guestlens(['df', '--json', ...disks.flatMap((d) => ['-a', d])]));
    assert.equal(r.exitCode, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as { device: string; fstype: string; label: string; blocks: number; bfree: number; bavail: number; files: number; ffree: number }[];
    assert.deepEqual(rows.map((x) => x.device), [...kernel.keys()]);
    for (const row of rows) {
      const k = kernel.get(row.device)!;
      assert.deepEqual([row.blocks, row.bfree, row.bavail, row.files, row.ffree], [k.blocks, k.bfree, k.bavail, k.files, k.ffree], row.device);
      if (row.device.startsWith('/dev/guestvg/')) assert.deepEqual([row.fstype, row.label], ['ext4', basename(row.device)]);
    }
  });

  it('reads files on every LV through the guest API as they were written', async () => {
    await guardImages(disks, async () => {
      const g = await openGuest(disks);
      try {
        for (const lv of ['discontig', 'linear', 'mirror', 'striped']) {
          const fs = await (await g.filesystem(`/dev/guestvg/${lv}`))!.open();
          assert.equal((await fs.readFile(`/srv/${lv}.txt`)).toString(), `this is ${lv}\n`);
          assert.ok((await fs.readFile('/srv/blob')).equals(Buffer.alloc(900 * 1024, 0x5a)), `${lv}: /srv/blob`);
          assert.equal((await fs.readFile('/var/log/syslog')).toString(), 'a line of log\n'.repeat(3000));
        }
      } finally {
        await g.close();
      }
    });
  });

  it('given only the first disk: lists what is there and names the LVs on the missing PV (exit 3)', async () => {
    const r = await guardImages([disks[0]], () => guestlens(['df', disks[0]]));
    assert.equal(r.exitCode, 3, r.stderr);
    assert.equal(r.stdout, expected('first.qcow2', ['/dev/sda1', '/dev/guestvg/discontig', '/dev/guestvg/linear', '/dev/guestvg/mirror']));
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 2, r.stderr);
    assert.match(lines[0], /^guestlens: df: first\.qcow2: \/dev\/guestvg\/striped: it needs physical volume pv1 \(UUID [\w-]+, last seen as "\/dev\/loop\d+"\) of volume group guestvg, which is on none of the disks given: give every disk of the guest$/);
    assert.match(lines[1], /^guestlens: df: first\.qcow2: \/dev\/guestvg\/swap: it needs physical volume pv1 /);
  });

  it('given only the second disk: the raid1 LV read from its leg there, the rest named (exit 3)', async () => {
    const r = await guardImages([disks[1]], () => guestlens(['df', disks[1]]));
    assert.equal(r.exitCode, 3);
    assert.equal(r.stdout, expected('second.qcow2', ['/dev/guestvg/mirror']));
    assert.deepEqual(
      r.stderr.trimEnd().split('\n').map((l) => l.split(': ')[3]),
      ['/dev/guestvg/discontig', '/dev/guestvg/linear', '/dev/guestvg/striped'],
    );
  });

  it('prints exactly what Debian\'s virt-df prints for this guest', async function () {
    if (!(await haveTool('virt-df'))) {
      console.log('      virt-df is not installed (Debian package libguestfs-tools): cannot compare');
      this.skip();
    }
    const add = disks.flatMap((d) => ['-a', d]);
    const theirs = await execa('virt-df', add, { env: { LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' }, reject: false });
    assert.equal(theirs.exitCode, 0, `virt-df failed: ${theirs.stderr}`);
    const ours = await guardImages(disks, () => guestlens(['df', ...add]));
    assert.equal(ours.exitCode, 0, ours.stderr);
    assert.equal(ours.stdout, `${theirs.stdout}\n`);
  });
});

describe('guestlens df: LVM metadata torn by a writer', function () {
  this.timeout(120000);

  it('reads again after a refresh when the copy was torn and the writer finished; a lasting tear is a retryable problem', async function () {
    const why = (await lvmUnavailable()) ?? (await loopMountUnavailable());
    if (why) {
      console.log(`      cannot run: ${why}`);
      this.skip();
    }
    const dir = scratchDir('lvm-torn');
    const image = join(dir, 'torn.raw');
    await sh('truncate', ['-s', '32M', image]);
    const f = await LvmFixture.create('tornvg', [{ file: image, offset: 0, size: 32 * 1024 * 1024 }]);
    let layout;
    try {
      await f.lvcreate(['-n', 'root', '-L', '12m', 'tornvg']);
      layout = await f.layout();
    } finally {
      await f.detach();
    }
    const fsImage = join(dir, 'root.ext4');
    await sh('truncate', ['-s', String(12 * 1024 * 1024), fsImage]);
    await sh('mkfs.ext4', ['-q', '-F', fsImage]);
    await scatter(layout, 'root', fsImage);
    const kernelRoot = await withKernelMount(fsImage, {}, (m) => kernelStatfs(m.dir));
    // The committed copy's text starts where raw_locns[0] says; a byte changed there is what a reader sees mid-write.
    const fd = openSync(image, 'r+');
    try {
      const header = Buffer.alloc(512);
      readSync(fd, header, 0, 512, 4096);
      const at = 4096 + Number(header.readBigUInt64LE(40)) + 10;
      const good = Buffer.alloc(1);
      readSync(fd, good, 0, 1, at);
      writeSync(fd, Buffer.from([good[0] ^ 0x20]), 0, 1, at);
      const guest = await openGuest([{ path: image, format: 'raw' }]);
      try {
        let mended = false;
        const df = await readGuestDf(guest, {
          afterFailedAttempt: () => {
            writeSync(fd, good, 0, 1, at);
            mended = true;
          },
        });
        assert.ok(mended, 'the first attempt failed');
        assert.equal(df.attempts, 2);
        assert.deepEqual(df.problems, []);
        assert.deepEqual(df.rows.map((r) => [r.device, r.statfs.blocks, r.statfs.bfree]), [['/dev/tornvg/root', kernelRoot.blocks, kernelRoot.bfree]]);
      } finally {
        await guest.close();
      }
      // Torn for good: each attempt changes the image again (a writer that never finishes), so it stays live and retryable.
      writeSync(fd, Buffer.from([good[0] ^ 0x20]), 0, 1, at);
      const again = await openGuest([{ path: image, format: 'raw' }]);
      try {
        let n = 0;
        const df = await readGuestDf(again, { delayMs: 10, afterFailedAttempt: () => void writeSync(fd, Buffer.from([good[0] ^ (0x20 + ++n)]), 0, 1, at) });
        assert.equal(df.attempts, 3);
        assert.deepEqual(df.problems.map((p) => [p.device, p.retryable]), [['/dev/sda', true]]);
        assert.match(df.problems[0].message, /checksum mismatch in the LVM2 metadata text .*; read 3 times\)$/);
      } finally {
        await again.close();
      }
    } finally {
      closeSync(fd);
    }
  });
});
