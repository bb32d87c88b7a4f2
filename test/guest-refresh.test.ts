/**
 * Guest.refresh() and the library's retry, against a qcow2 that a real
 * qemu-storage-daemon holds read-write and writes between our reads: new
 * clusters (and L2 tables) are allocated in between, so a reader that did
 * not refresh its cached tables would see stale zeros. Writes arrive over
 * NBD (block level) and through a FUSE export the kernel loop-mounts
 * (filesystem level).
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { closeSync, mkdirSync, openSync, writeFileSync, appendFileSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { openGuest, readGuestDf, withGuest } from '@guestlens/inspect';
import { startTracked, stop, waitFor, type Tracked } from './support/processes.ts';
import { kernelStatfs, loopMountUnavailable, withKernelMount } from './support/kernel.ts';
import { sh } from './support/run.ts';
import { startHolder } from './support/qemuHolders.ts';
import { scratchDir } from './support/scratch.ts';

const MiB = 1024 * 1024;

describe('guest: refresh() of an image a QEMU is writing', function () {
  this.timeout(300000);

  it('sees clusters QEMU allocated (over NBD) after the guest was opened only after refresh(), through the overlay', async () => {
    const dir = scratchDir('refresh-nbd');
    const image = join(dir, 'nbd.qcow2');
    // 64 KiB clusters, 512 MiB: one L2 table covers 512 MiB, so writes near each other share a table.
    await sh('qemu-img', ['create', '-q', '-f', 'qcow2', image, '512M']);
    const holder = await startHolder('qsd writable', image, 'qcow2');
    const nbdWrite = async (pattern: number, offset: number, length: number) => {
      const out = await sh('qemu-io', ['-f', 'raw', '-c', `write -P ${pattern} ${offset} ${length}`, `nbd+unix:///fmt0?socket=${holder.socket}`]);
      assert.doesNotMatch(out, /failed|error/i, out);
    };
    // An L2 table exists (allocated by this write) before we open; the region we read next is unallocated in it.
    await nbdWrite(0x11, 300 * MiB + 128 * 1024, 64 * 1024);
    const guest = await openGuest([{ path: image, format: 'qcow2' }]);
    try {
      const disk = guest.disks[0].source;
      assert.ok((await disk.read(300 * MiB, 4096)).every((b) => b === 0), 'unallocated: zeros');
      await nbdWrite(0x61, 300 * MiB, 64 * 1024);
      // The L2 table we cached says "unallocated": without a refresh the new data is invisible.
      assert.ok((await disk.read(300 * MiB, 4096)).every((b) => b === 0), 'stale until refreshed (the cached L2 table)');
      await guest.refresh();
      assert.ok((await disk.read(300 * MiB, 4096)).every((b) => b === 0x61), 'refreshed: the new cluster');
      assert.ok((await disk.read(300 * MiB + 128 * 1024, 4096)).every((b) => b === 0x11));
    } finally {
      await guest.close();
      await holder.stop();
    }
  });
});

describe('guest: refresh() of a filesystem the kernel writes through a FUSE export', function () {
  this.timeout(300000);
  let dir: string;
  let image: string;
  let exported: string;
  let mnt: string;
  let daemon: Tracked | undefined;
  let loopDevice: string | undefined;

  before(async function () {
    const why = await loopMountUnavailable();
    if (why) {
      console.log(`      cannot run the refresh tests here: ${why}`);
      this.skip();
    }
    dir = scratchDir('refresh-fuse');
    image = join(dir, 'live.qcow2');
    exported = join(dir, 'export.raw');
    mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    await sh('qemu-img', ['create', '-q', '-f', 'qcow2', image, '256M']);
    closeSync(openSync(exported, 'w'));
    daemon = startTracked('qemu-storage-daemon', [
      '--blockdev', `driver=file,node-name=f,filename=${image}`,
      '--blockdev', 'driver=qcow2,node-name=q,file=f',
      '--export', `type=fuse,id=e,node-name=q,mountpoint=${exported},writable=on`,
    ], { suite: true });
    await waitFor('the FUSE export', async () => (await execa('stat', ['-c', '%s', exported])).stdout.trim() === String(256 * MiB));
  });

  after(async () => {
    if (loopDevice) {
      await execa('umount', [mnt], { reject: false });
      await execa('losetup', ['-d', loopDevice], { reject: false });
    }
    if (daemon) await stop(daemon);
  });

  it('refresh() brings an open filesystem up to date (a file written and synced by the kernel meanwhile)', async () => {
    await sh('mkfs.ext4', ['-q', '-F', '-L', 'live', '-E', 'lazy_itable_init=0,lazy_journal_init=0', exported]);
    loopDevice = (await sh('losetup', ['--find', '--show', exported])).trim();
    await sh('mount', ['-o', 'rw', loopDevice, mnt]);
    writeFileSync(join(mnt, 'log.txt'), 'line 1\n');
    await sh('sync', ['-f', mnt]);
    await withGuest([{ path: image, format: 'qcow2' }], async (guest) => {
      const fs = await (await guest.filesystem('/dev/sda'))!.open();
      assert.equal((await fs.readFile('/log.txt')).toString(), 'line 1\n');
      appendFileSync(join(mnt, 'log.txt'), 'line 2\n'.repeat(20000));
      writeFileSync(join(mnt, 'new.txt'), 'new\n');
      await sh('sync', ['-f', mnt]);
      const result = await guest.refresh();
      assert.equal(result.devicesChanged, false);
      const same = await (await guest.filesystem('/dev/sda'))!.open();
      assert.equal(same, fs, 'the same filesystem object, refreshed');
      assert.equal((await fs.readFile('/log.txt')).toString(), 'line 1\n' + 'line 2\n'.repeat(20000));
      assert.equal((await fs.readFile('/new.txt')).toString(), 'new\n');
      const kernel = await kernelStatfs(mnt);
      const ours = await fs.statfs();
      assert.deepEqual([ours.blocks, ours.bfree, ours.ffree], [kernel.blocks, kernel.bfree, kernel.ffree]);
    });
  });
});

describe('guest: retry of a torn read, by refresh', function () {
  this.timeout(120000);

  it('reads again after a refresh when the image changed under a failed read, and reports the good numbers', async function () {
    const why = await loopMountUnavailable();
    if (why) {
      console.log(`      cannot run: ${why}`);
      this.skip();
    }
    const dir = scratchDir('retry');
    const image = join(dir, 'torn.raw');
    await sh('truncate', ['-s', '32M', image]);
    await sh('mkfs.ext4', ['-q', '-F', '-b', '4096', '-O', 'metadata_csum', image]);
    const kernel = await withKernelMount(image, {}, (m) => kernelStatfs(m.dir));
    // A superblock whose checksum is wrong is what a reader sees when it catches the superblock half-written.
    const at = 1024 + 0x3fc;
    const fd = openSync(image, 'r+');
    try {
      const good = Buffer.alloc(1);
      readSync(fd, good, 0, 1, at);
      writeSync(fd, Buffer.from([good[0] ^ 0xff]), 0, 1, at);
      const guest = await openGuest([{ path: image, format: 'raw' }]);
      let mended = false;
      try {
        const df = await readGuestDf(guest, {
          // The "writer" finishes its update after our first read: the image changed, so the guest is live.
          afterFailedAttempt: () => {
            writeSync(fd, good, 0, 1, at);
            mended = true;
          },
        });
        assert.ok(mended, 'the first attempt failed');
        assert.equal(df.attempts, 2);
        assert.deepEqual(df.problems, []);
        assert.deepEqual([df.rows[0].statfs.blocks, df.rows[0].statfs.bfree, df.rows[0].statfs.ffree], [kernel.blocks, kernel.bfree, kernel.ffree]);
      } finally {
        await guest.close();
      }
    } finally {
      closeSync(fd);
    }
  });
});
