/**
 * df on a live guest, with real parts: qemu-storage-daemon holds a qcow2
 * read-write and exports it through FUSE; the kernel loop-mounts that export
 * (our stand-in for the guest) and writes files into the filesystem. While
 * QEMU holds its locks, guestlens df reads the qcow2 and, after the writer's
 * sync, shows exactly what stat -f on the mount shows.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdirSync, writeFileSync, closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { probe } from '@guestlens/locking';
import { startTracked, stop, waitFor, type Tracked } from './support/processes.ts';
import { kernelStatfs, loopMountUnavailable } from './support/kernel.ts';
import { guestlens, sh } from './support/run.ts';
import { scratchDir } from './support/scratch.ts';

interface JsonRow {
  device: string;
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  exact: boolean;
}

describe('guestlens df on a live guest (qemu-storage-daemon + FUSE + kernel writer)', function () {
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
      console.log(`      cannot run the live df test here: ${why}`);
      this.skip();
    }
    dir = scratchDir('live');
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
    // The export is up when the mountpoint file shows the virtual disk's size.
    await waitFor('the FUSE export', async () => (await execa('stat', ['-c', '%s', exported])).stdout.trim() === String(256 * 1024 * 1024));
    // No lazy init: the kernel must not keep writing inode tables behind our back.
    await sh('mkfs.ext4', ['-q', '-F', '-L', 'live', '-E', 'lazy_itable_init=0,lazy_journal_init=0', exported]);
    loopDevice = (await sh('losetup', ['--find', '--show', exported])).trim();
    await sh('mount', ['-o', 'rw', loopDevice, mnt]);
  });

  after(async () => {
    if (loopDevice) {
      await execa('umount', [mnt], { reject: false });
      await execa('losetup', ['-d', loopDevice], { reject: false });
    }
    if (daemon) await stop(daemon);
  });

  async function ourView(): Promise<JsonRow> {
    const r = await guestlens(['df', '--json', image]);
    assert.equal(r.exitCode, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as JsonRow[];
    assert.equal(rows.length, 1);
    assert.equal(rows[0].device, '/dev/sda');
    return rows[0];
  }

  async function assertSameAsKernel(): Promise<void> {
    await sh('sync', ['-f', mnt]);
    const kernel = await kernelStatfs(mnt);
    const ours = await ourView();
    assert.deepEqual(
      { bsize: ours.bsize, blocks: ours.blocks, bfree: ours.bfree, bavail: ours.bavail, files: ours.files, ffree: ours.ffree },
      { bsize: kernel.bsize, blocks: kernel.blocks, bfree: kernel.bfree, bavail: kernel.bavail, files: kernel.files, ffree: kernel.ffree },
    );
  }

  it('works while QEMU holds the image read-write, and leaves its locks alone', async () => {
    const before = await probe(image);
    assert.match(before.verdict, /in use read-write by qemu-storage-daemon/);
    await assertSameAsKernel();
    const after = await probe(image);
    assert.deepEqual(after.heldBytes, before.heldBytes);
    assert.equal(daemon!.exitCode, null, 'the daemon is still running');
  });

  it('shows new usage after the writer syncs, exactly as stat -f on the mount', async () => {
    const first = await ourView();
    const data = Buffer.alloc(24 * 1024 * 1024, 0x5a);
    for (let i = 0; i < 3; i++) writeFileSync(join(mnt, `file${i}`), data);
    mkdirSync(join(mnt, 'many'));
    for (let i = 0; i < 300; i++) writeFileSync(join(mnt, 'many', `f${i}`), `${i}\n`);
    await assertSameAsKernel();
    const second = await ourView();
    assert.ok(first.bfree - second.bfree >= (3 * data.length) / second.bsize, 'the new files are counted');
    assert.ok(first.ffree - second.ffree >= 301, 'the new inodes are counted');
  });

  it('follows deletions too', async () => {
    const { rmSync } = await import('node:fs');
    rmSync(join(mnt, 'many'), { recursive: true });
    rmSync(join(mnt, 'file1'));
    await assertSameAsKernel();
  });
});
