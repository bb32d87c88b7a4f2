/**
 * guestlens df end to end on guests whose filesystems are XFS, as RHEL-style
 * guests are: a GPT disk (ext4 /boot, XFS root, swap, an XFS /var made with
 * other options) in a qcow2 image, the XFS filesystems filled through a
 * read-write loop mount. Every number must be what the kernel's read-only
 * mount of each partition says (stat -f), in text, CSV, -i, -h and JSON; an
 * XFS whose log needs recovery is read as it is and said to be inexact.
 */
import assert from 'node:assert/strict';
import { basename, join } from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import { buildDisk, toQcow2, type BuiltDisk } from './support/guestDisk.ts';
import { kernelStatfs, loopMountUnavailable, mountImage, withKernelMount } from './support/kernel.ts';
import { guardImages } from './support/imageGuard.ts';
import { guestlens, sh } from './support/run.ts';
import { scratchDir } from './support/scratch.ts';
import { dfHeader, dfRow } from '../cli/src/df/dfOutput.ts';
import { SMALL_FS_ENV, pseudoRandom } from '../packages/inspect/test/filesystems/xfs/xfsFixtures.ts';

type Kstat = Awaited<ReturnType<typeof kernelStatfs>>;

const MiB = 1024 * 1024;

/** An XFS image of `sizeMiB` made with `args` and filled by the kernel; `dirty` leaves its log needing recovery. */
async function xfsImage(name: string, sizeMiB: number, args: string[], options: { dirty?: boolean } = {}): Promise<string> {
  const image = join(scratchDir(`df-xfs-${name}`), `${name}.img`);
  await sh('truncate', ['-s', `${sizeMiB}M`, image]);
  await sh('mkfs.xfs', ['-q', '-f', '-L', name, ...args, image], { env: SMALL_FS_ENV });
  const m = await mountImage(image, { readWrite: true });
  try {
    await mkdir(join(m.dir, 'etc'));
    await writeFile(join(m.dir, 'etc', 'hostname'), `${name}\n`);
    await mkdir(join(m.dir, 'log'));
    for (let i = 0; i < 400; i++) await writeFile(join(m.dir, 'log', `messages-${i}`), pseudoRandom(i * 97, i));
    await writeFile(join(m.dir, 'blob'), pseudoRandom(3 * MiB, 1));
    if (options.dirty) {
      await sh('sync', ['-f', m.dir]);
      await writeFile(join(m.dir, 'after-sync'), pseudoRandom(MiB, 2));
      await sh('xfs_io', ['-x', '-c', 'shutdown -f', m.dir]);
    }
  } finally {
    await m.unmount();
  }
  return image;
}

describe('guestlens df on XFS guests (kernel oracle)', function () {
  this.timeout(300_000);
  let disk: BuiltDisk;
  let qcow2: string;
  const kernel = new Map<string, Kstat>();

  before(async function () {
    const why = await loopMountUnavailable();
    if (why) {
      console.log(`      cannot run the kernel-oracle df tests here: ${why}`);
      this.skip();
    }
    const root = await xfsImage('root', 160, []);
    const varfs = await xfsImage('var', 64, ['-b', 'size=1024', '-m', 'rmapbt=1']);
    disk = await buildDisk('xfsguest', 'gpt', [
      { sizeMiB: 24, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'boot'], files: { vmlinuz: Buffer.alloc(300_000, 1) } } },
      { sizeMiB: 160, content: { image: root } },
      { sizeMiB: 8, content: { swap: true } },
      { sizeMiB: 64, content: { image: varfs } },
    ]);
    for (const p of disk.partitions) {
      if ('swap' in p.spec.content) continue;
      kernel.set(`/dev/sda${p.number}`, await withKernelMount(disk.raw, { offset: p.offset, sizelimit: p.size }, (m) => kernelStatfs(m.dir)));
    }
    qcow2 = await toQcow2(disk.raw);
  });

  function expected(name: string, opts = { human: false, inodes: false, csv: false }): string {
    let s = dfHeader(opts);
    for (const [device, k] of kernel) s += dfRow(name, device, k, opts);
    return s;
  }

  it('prints the kernel\'s numbers for the ext4 and XFS filesystems of a GPT qcow2 guest, in text, CSV, -i and -h', async () => {
    const name = basename(qcow2);
    const r = await guardImages([qcow2], () => guestlens(['df', qcow2]));
    assert.equal(r.stderr, '');
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, expected(name));
    for (const opts of [
      { human: false, inodes: false, csv: true },
      { human: false, inodes: true, csv: false },
      { human: true, inodes: false, csv: false },
    ]) {
      const flags = [...(opts.csv ? ['--csv'] : []), ...(opts.inodes ? ['-i'] : []), ...(opts.human ? ['-h'] : [])];
      const again = await guestlens(['df', ...flags, qcow2]);
      assert.equal(again.exitCode, 0, again.stderr);
      assert.equal(again.stdout, expected(name, opts), flags.join(' '));
    }
  });

  it('names XFS filesystems as blkid does in JSON, with label, UUID and exact=true', async () => {
    const r = await guestlens(['df', '--json', qcow2]);
    assert.equal(r.exitCode, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.deepEqual(rows.map((x) => x.device), [...kernel.keys()]);
    assert.deepEqual(rows.map((x) => x.fstype), ['ext4', 'xfs', 'xfs']);
    assert.deepEqual(rows.map((x) => x.label), ['boot', 'root', 'var']);
    for (const row of rows) {
      const k = kernel.get(row.device as string)!;
      assert.deepEqual([row.bsize, row.blocks, row.bfree, row.bavail, row.files, row.ffree], [k.bsize, k.blocks, k.bfree, k.bavail, k.files, k.ffree], String(row.device));
      assert.equal(row.exact, true);
      const part = disk.partitions.find((p) => `/dev/sda${p.number}` === row.device)!;
      const blkidUuid = (await sh('blkid', ['-p', '-o', 'value', '-s', 'UUID', '--offset', String(part.offset), disk.raw])).trim();
      assert.equal(row.uuid, blkidUuid);
    }
  });

  it('an XFS partition whose log needs recovery (the guest crashed) is replayed in memory: the numbers the kernel shows after its own replay', async () => {
    const dirtyDisk = await buildDisk('xfsdirty', 'gpt', [
      { sizeMiB: 16, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'boot'] } },
      { sizeMiB: 96, content: { image: await xfsImage('crashed', 96, [], { dirty: true }) } },
    ]);
    const part = dirtyDisk.partitions[1];
    // The kernel replays the log before it answers statfs (on a private copy: the image stays as it is).
    const replayed = await withKernelMount(dirtyDisk.raw, { offset: part.offset, sizelimit: part.size, copy: true }, (m) => kernelStatfs(m.dir));
    const image = await toQcow2(dirtyDisk.raw);
    const r = await guardImages([image], () => guestlens(['df', '--json', image]));
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stderr, '');
    const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.deepEqual(rows.map((x) => [x.device, x.fstype, x.exact]), [['/dev/sda1', 'ext4', true], ['/dev/sda2', 'xfs', true]]);
    const x = rows[1];
    assert.deepEqual([x.bsize, x.blocks, x.bfree, x.bavail, x.files, x.ffree], [replayed.bsize, replayed.blocks, replayed.bfree, replayed.bavail, replayed.files, replayed.ffree]);
  });
});
