/**
 * A "running guest" made of real parts: qemu-storage-daemon holds a qcow2
 * read-write (QEMU's locks taken, as a VM takes them) and exports it through
 * FUSE; the host kernel loop-mounts the export, so a writer in the test
 * writes files the way a guest's kernel does, and guestlens reads the qcow2
 * underneath, through its overlay. What reaches the qcow2 is what the
 * kernel wrote back (fsync, sync -f, or its own writeback).
 *
 * The loop device does buffered I/O: with --direct-io=on, QEMU 7.2's FUSE
 * export loses and garbles writes (mkfs then fails e2fsck), so it is no way
 * to model a virtio disk.
 */
import { execa } from 'execa';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { startTracked, stop, waitFor, type Tracked } from './processes.ts';
import { sh } from './run.ts';

const MiB = 1024 * 1024;

export interface LiveGuest {
  /** The qcow2 qemu-storage-daemon holds (what guestlens is given). */
  image: string;
  /** Where the kernel mounted the filesystem on it (read-write). */
  mnt: string;
  /** Write the filesystem's dirty data back to the qcow2. */
  sync(): Promise<void>;
  stop(): Promise<void>;
}

/** `mkfs`: the program and its options; the loop device's path is appended (default: mkfs.ext4 with every table written now). */
/** `suite`: kept for the whole suite (started in a before() hook), not stopped after the first test. */
export async function startLiveGuest(dir: string, options: { sizeMiB?: number; mkfs?: string[]; suite?: boolean } = {}): Promise<LiveGuest> {
  const size = options.sizeMiB ?? 128;
  const image = join(dir, 'live.qcow2');
  const exported = join(dir, 'export.raw');
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt, { recursive: true });
  await sh('qemu-img', ['create', '-q', '-f', 'qcow2', image, `${size}M`]);
  closeSync(openSync(exported, 'w'));
  let daemon: Tracked | undefined = startTracked('qemu-storage-daemon', [
    '--blockdev', `driver=file,node-name=f,filename=${image}`,
    '--blockdev', 'driver=qcow2,node-name=q,file=f',
    '--export', `type=fuse,id=e,node-name=q,mountpoint=${exported},writable=on`,
  ], { suite: options.suite });
  let loop: string | undefined;
  const stopAll = async () => {
    if (loop) {
      await execa('umount', [mnt], { reject: false });
      await execa('losetup', ['-d', loop], { reject: false });
      loop = undefined;
    }
    if (daemon) await stop(daemon);
    daemon = undefined;
  };
  try {
    await waitFor('the FUSE export', async () => (await execa('stat', ['-c', '%s', exported])).stdout.trim() === String(size * MiB));
    loop = (await sh('losetup', ['--find', '--show', exported])).trim();
    const [mkfs, ...args] = options.mkfs ?? ['mkfs.ext4', '-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0'];
    await sh(mkfs, [...args, loop]);
    await sh('mount', [loop, mnt]);
  } catch (err) {
    await stopAll();
    throw err;
  }
  return { image, mnt, sync: () => sh('sync', ['-f', mnt]).then(() => undefined), stop: stopAll };
}
