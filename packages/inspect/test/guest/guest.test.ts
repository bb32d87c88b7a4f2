/**
 * The guest API: several images as one guest, device names as libguestfs
 * gives them, every filesystem with blkid's view of it, and path-level access
 * (stat, readdir, readFile, streams, readlink) with symlinks confined to the
 * filesystem. Path resolution is tested on a small in-memory filesystem (every
 * corner, exactly) and end to end on real mkfs.ext4 -d images against the
 * kernel's loop mount.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import {
  canonicalDeviceName,
  diskDevice,
  diskLetters,
  FileTooLargeError,
  GuestFilesystem,
  GuestOpenError,
  GuestPathError,
  MAX_SYMLINKS,
  openGuest,
  partitionDevice,
  UnsupportedFilesystemError,
  withGuest,
  type DirEntry,
  type FileStat,
  type FileType,
  type Filesystem,
  type StatFs,
} from '../../src/index.ts';
import { guardImages } from '../../../../test/support/imageGuard.ts';
import { scratchDir } from '../../../../test/support/scratch.ts';
import { sh } from '../../../../test/support/run.ts';
import { loopMountUnavailable, treeNodeOf, walkMounted, withKernelMount, type TreeNode } from '../../../../test/support/kernel.ts';
import { MemorySource } from '../../../../test/support/memorySource.ts';
import { MemFs } from '../../../../test/support/memoryFilesystem.ts';
import { productTempEntries } from '../../../../test/support/rootHooks.ts';
import { startHolder } from '../../../../test/support/qemuHolders.ts';

const MiB = 1024 * 1024;

describe('guest: device names', function () {
  it('names disks sda..sdz, sdaa.., as the kernel and libguestfs do, and partitions by number', function () {
    assert.deepEqual([0, 1, 25, 26, 27, 51, 52, 701, 702, 18277, 18278].map(diskLetters), ['a', 'b', 'z', 'aa', 'ab', 'az', 'ba', 'zz', 'aaa', 'zzz', 'aaaa']);
    assert.equal(diskDevice(0), '/dev/sda');
    assert.equal(diskDevice(27), '/dev/sdab');
    assert.equal(partitionDevice(1, 5), '/dev/sdb5');
    assert.throws(() => diskLetters(-1), RangeError);
  });

  it('canonicalises vd*/hd*/xvd* names to sd*, as virt-df prints them', function () {
    assert.equal(canonicalDeviceName('/dev/vda1'), '/dev/sda1');
    assert.equal(canonicalDeviceName('/dev/hdb'), '/dev/sdb');
    assert.equal(canonicalDeviceName('/dev/xvdc3'), '/dev/sdc3');
    assert.equal(canonicalDeviceName('/dev/VG/LV'), '/dev/VG/LV');
  });
});

/** blkid's TYPE/LABEL/UUID of a region of a file. */
async function blkidAt(path: string, offset: number, size: number): Promise<{ TYPE?: string; LABEL?: string; UUID?: string }> {
  const r = await execa('blkid', ['-p', '-o', 'export', '--offset', String(offset), '--size', String(size), path], { reject: false });
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1).replace(/\\(.)/g, '$1');
  }
  return { TYPE: out.TYPE, LABEL: out.LABEL, UUID: out.UUID };
}

/** Write a filesystem image made separately into a disk image at `offset` (sparse). */
async function placeAt(disk: string, part: string, offset: number): Promise<void> {
  await sh('dd', [`if=${part}`, `of=${disk}`, 'bs=64K', `seek=${offset}`, 'oflag=seek_bytes', 'conv=notrunc,sparse', 'status=none']);
}

async function blank(path: string, size: number): Promise<string> {
  await writeFile(path, '');
  await truncate(path, size);
  return path;
}

describe('guest: several disks as one guest', function () {
  this.timeout(180_000);
  let dir: string;
  let gptDisk: string;
  let mbrDisk: string;
  let wholeDisk: string;
  let source: string;

  before(async function () {
    dir = scratchDir('guest');
    source = join(dir, 'root-src');
    await buildTree(source);

    // sda: GPT, ext4 root (with content) and swap.
    gptDisk = await blank(join(dir, 'sda.img'), 96 * MiB);
    await sh('sgdisk', ['-n', '1:2048:+48M', '-t', '1:8300', '-c', '1:root', '-n', '2:0:+8M', '-t', '2:8200', gptDisk]);
    const root = await blank(join(dir, 'root.ext4'), 48 * MiB);
    await sh('mkfs.ext4', ['-q', '-F', '-L', 'rootfs', '-d', source, root]);
    await placeAt(gptDisk, root, 2048 * 512);
    const swap = await blank(join(dir, 'swap.img'), 8 * MiB);
    await sh('mkswap', ['-L', 'swappy', swap]);
    await placeAt(gptDisk, swap, (2048 + 48 * 2048) * 512);

    // sdb: MBR with a primary vfat and logical ext2 and ext3 partitions.
    mbrDisk = await blank(join(dir, 'sdb.img'), 96 * MiB);
    await sh('sfdisk', ['-q', mbrDisk], { input: 'label: dos\nstart=2048, size=16M, type=c\nsize=70M, type=5\nsdb.img5: size=30M, type=83\nsdb.img6: size=30M, type=83\n' });
    const table = JSON.parse(await sh('sfdisk', ['--json', mbrDisk])) as { partitiontable: { partitions: Array<{ node: string; start: number; size: number }> } };
    const byNumber = new Map(table.partitiontable.partitions.map((p) => [Number(/(\d+)$/.exec(p.node)![1]), p]));
    const fat = await blank(join(dir, 'fat.img'), byNumber.get(1)!.size * 512);
    await sh('mkfs.vfat', ['-F', '16', '-n', 'ESP', fat]);
    await placeAt(mbrDisk, fat, byNumber.get(1)!.start * 512);
    for (const [n, kind] of [[5, 'ext2'], [6, 'ext3']] as const) {
      const part = await blank(join(dir, `p${n}.img`), byNumber.get(n)!.size * 512);
      await sh(`mkfs.${kind}`, ['-q', '-F', '-L', `logical${n}`, part]);
      await placeAt(mbrDisk, part, byNumber.get(n)!.start * 512);
    }

    // sdc: no partition table, an ext4 over the whole disk.
    wholeDisk = await blank(join(dir, 'sdc.img'), 16 * MiB);
    await sh('mkfs.ext4', ['-q', '-F', '-L', 'whole', wholeDisk]);
  });

  it('lists every filesystem with device, type, label, UUID and size as blkid sees them, disks in the order given', async function () {
    const images = [gptDisk, { path: mbrDisk, format: 'raw' }, wholeDisk];
    const list = await guardImages([gptDisk, mbrDisk, wholeDisk], () =>
      withGuest(images, async (guest) => {
        assert.deepEqual(guest.disks.map((d) => [d.device, d.partitionTable?.scheme]), [['/dev/sda', 'gpt'], ['/dev/sdb', 'mbr'], ['/dev/sdc', 'none']]);
        assert.deepEqual(guest.warnings, []);
        return guest.filesystems();
      }, { overlay: false }),
    );
    assert.deepEqual(list.map((f) => [f.device, f.type, f.label]), [
      ['/dev/sda1', 'ext4', 'rootfs'],
      ['/dev/sda2', 'swap', 'swappy'],
      ['/dev/sdb1', 'vfat', 'ESP'],
      ['/dev/sdb5', 'ext2', 'logical5'],
      ['/dev/sdb6', 'ext3', 'logical6'],
      ['/dev/sdc', 'ext4', 'whole'],
    ]);
    for (const f of list) {
      const image = f.disk.image;
      const offset = f.partition?.offset ?? 0;
      assert.equal(f.size, f.partition?.size ?? f.disk.source.size);
      const theirs = await blkidAt(image, offset, f.size);
      assert.deepEqual({ TYPE: f.type, LABEL: f.label, UUID: f.uuid }, theirs, f.device);
    }
    assert.equal(list[4].partition?.kind, 'logical');
  });

  it('opens a filesystem by device and reads a file through it; a swap device is refused by type', async function () {
    await withGuest([gptDisk, mbrDisk, wholeDisk], async (guest) => {
      const root = await (await guest.filesystem('/dev/sda1'))!.open();
      assert.ok(root instanceof GuestFilesystem);
      assert.equal(root.device, '/dev/sda1');
      assert.equal((await root.readFile('/etc/hostname')).toString(), 'guest-one\n');
      assert.equal(await guest.filesystem('/dev/sda1').then((f) => f!.open()), root, 'opened once, shared');
      const swap = (await guest.filesystem('/dev/sda2'))!;
      await assert.rejects(swap.open(), (err: unknown) => {
        assert.ok(err instanceof UnsupportedFilesystemError);
        assert.equal(err.userFacing, true);
        assert.equal(err.message, '/dev/sda2: guestlens cannot read swap filesystems (yet)');
        return true;
      });
      const whole = await (await guest.filesystem('/dev/sdc'))!.open();
      assert.deepEqual((await whole.readdir('/')).map((e) => e.name).sort(), ['lost+found']);
    }, { overlay: false });
  });

  it('matches the kernel: every path of the ext4 root, by stat/lstat/readdir/readlink/readFile/createReadStream', async function () {
    const why = await loopMountUnavailable();
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
    const fsInfoOffset = 2048 * 512;
    const kernel = await withKernelMount(gptDisk, { offset: fsInfoOffset, sizelimit: 48 * MiB }, (m) => walkMounted(m.dir, { exclude: ['/lost+found'] }));
    const ours = await withGuest([gptDisk], async (guest) => walkGuest(await (await guest.filesystem('/dev/sda1'))!.open()), { overlay: false });
    assert.deepEqual(ours, kernel);
    assert.ok(ours.some((n) => n.type === 'symlink' && n.target === '/etc/hostname'));
  });

  it('reports a disk whose partition table cannot be read as a warning, and still shows the others', async function () {
    const broken = join(dir, 'broken.img');
    await sh('cp', ['--sparse=always', gptDisk, broken]);
    const fh = await (await import('node:fs/promises')).open(broken, 'r+');
    await fh.write(Buffer.from('XX'), 0, 2, 512); // primary header signature
    await fh.write(Buffer.from('XX'), 0, 2, 96 * MiB - 512); // backup header signature
    await fh.close();
    await withGuest([wholeDisk, broken], async (guest) => {
      assert.equal(guest.disks[1].partitionTable, undefined);
      assert.equal(guest.warnings.length, 1);
      assert.equal(guest.warnings[0].device, '/dev/sdb');
      assert.match(guest.warnings[0].message, /broken\.img: .*primary GPT \(LBA 1\) is damaged/);
      assert.deepEqual((await guest.filesystems()).map((f) => f.device), ['/dev/sda']);
    }, { overlay: false });
  });

  it('fails clearly for a missing image, and closes the images it had opened', async function () {
    let closed = 0;
    const opener = async (spec: { path: string }) => {
      if (spec.path.endsWith('missing.img')) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${spec.path}'`), { code: 'ENOENT', syscall: 'open', path: spec.path });
      return { source: new MemorySource(Buffer.alloc(0), spec.path, MiB), format: 'raw', close: async () => void closed++ };
    };
    await assert.rejects(openGuest(['a.img', 'b.img', 'missing.img'], { openImage: opener }), { code: 'ENOENT' });
    assert.equal(closed, 2);
    await assert.rejects(openGuest([join(dir, 'nope.img')], { overlay: false }), { code: 'ENOENT' });
  });

  it('passes format and overlay choice to the image opener, and closes each image once', async function () {
    const seen: string[] = [];
    let closes = 0;
    const guest = await openGuest([{ path: 'x.qcow2', format: 'qcow2' }, 'y.img'], {
      overlay: true,
      openImage: async (spec, o) => {
        seen.push(`${spec.path}:${spec.format ?? '-'}:${o.overlay}`);
        return { source: new MemorySource(Buffer.alloc(0), spec.path, MiB), format: spec.format ?? 'raw', close: async () => void closes++ };
      },
    });
    assert.deepEqual(seen, ['x.qcow2:qcow2:true', 'y.img:-:true']);
    assert.deepEqual(guest.disks.map((d) => [d.device, d.format]), [['/dev/sda', 'qcow2'], ['/dev/sdb', 'raw']]);
    await guest.close();
    await guest.close();
    assert.equal(closes, 2);
    assert.throws(() => guest.filesystems(), /closed/);
  });
});

describe('guest: the default image opener (overlay + qcow2-js)', function () {
  this.timeout(120_000);
  let dir: string;
  let raw: string;
  let qcow2: string;
  let expected: Array<[string, string, string | undefined, string | undefined]>;

  before(async function () {
    dir = scratchDir('opener');
    raw = await blank(join(dir, 'disk.raw'), 64 * MiB);
    await sh('sfdisk', ['-q', raw], { input: 'label: gpt\nstart=2048, size=40M, type=linux\nsize=8M, type=swap\n' });
    const part = await blank(join(dir, 'part.img'), 40 * MiB);
    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'etc'), { recursive: true });
    await writeFile(join(tree, 'etc/hostname'), 'through-the-overlay\n');
    await sh('mkfs.ext4', ['-q', '-F', '-L', 'qroot', '-d', tree, part]);
    await placeAt(raw, part, 2048 * 512);
    qcow2 = join(dir, 'disk with space, and "quotes".qcow2');
    await sh('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', '-c', raw, qcow2]);
    expected = (await withGuest([raw], async (g) => (await g.filesystems()).map((f) => [f.device, f.type, f.label, f.uuid] as [string, string, string | undefined, string | undefined]), { overlay: false }));
    assert.equal(expected.length, 2);
  });

  for (const overlay of [true, false]) {
    it(`reads a compressed qcow2 ${overlay ? 'through a throw-away overlay (the default)' : 'directly ({ overlay: false })'} exactly as the raw disk, and leaves it unchanged`, async function () {
      await guardImages([qcow2], () =>
        withGuest([qcow2], async (guest) => {
          assert.equal(guest.disks[0].format, 'qcow2');
          assert.deepEqual((await guest.filesystems()).map((f) => [f.device, f.type, f.label, f.uuid]), expected);
          const root = await (await guest.filesystem('/dev/sda1'))!.open();
          assert.equal((await root.readFile('/etc/hostname')).toString(), 'through-the-overlay\n');
        }, overlay ? {} : { overlay: false }),
      );
      assert.deepEqual(productTempEntries(), [], 'no overlay left behind');
    });
  }

  it('reads a guest while qemu-storage-daemon holds its image read-write (through the overlay)', async function () {
    const live = join(dir, 'live.qcow2');
    await sh('cp', [qcow2, live]);
    const holder = await startHolder('qsd writable', live, 'qcow2');
    try {
      await withGuest([{ path: live, format: 'qcow2' }], async (guest) => {
        const root = await (await guest.filesystem('/dev/sda1'))!.open();
        assert.equal((await root.readFile('/etc/hostname')).toString(), 'through-the-overlay\n');
      });
      assert.equal(holder.child.exitCode, null, 'the VM-side holder kept running');
    } finally {
      await holder.stop();
    }
  });

  it('refuses, with typed errors naming the image, what it cannot read', async function () {
    // A raw disk said to be qed: guestlens has no qed reader, QEMU (which then reads it) finds no qed header; both said.
    await assert.rejects(openGuest([{ path: raw, format: 'qed' }], { overlay: false }), (err: unknown) => {
      assert.ok(err instanceof GuestOpenError, String(err));
      assert.match(err.message, /disk\.raw: is given as qed, a format guestlens has no reader of its own for .*; and QEMU cannot read it either: QEMU cannot open it as qed: Image not in QED format/);
      return true;
    });
    // --reader native: refused by guestlens alone.
    await assert.rejects(openGuest([{ path: raw, format: 'qed', reader: 'native' }], { overlay: false }), (err: unknown) => {
      assert.ok(err instanceof GuestOpenError, String(err));
      assert.match(err.message, /disk\.raw: qed images are read by QEMU or through an overlay \(guestlens reads qcow2, vmdk, vdi, vhdx, vpc, raw itself\); leave out --reader native/);
      return true;
    });
    // Asked for qcow2, found raw: the overlay package says so.
    await assert.rejects(openGuest([{ path: raw, format: 'qcow2' }]), (err: unknown) => {
      assert.equal((err as { userFacing?: boolean }).userFacing, true, String(err));
      assert.match((err as Error).message, /disk\.raw/);
      return true;
    });
    assert.deepEqual(productTempEntries(), []);
  });
});

// ---------------------------------------------------------------------------
// Path resolution on an in-memory filesystem.

function sampleFs(): MemFs {
  const fs = new MemFs();
  fs.dir('/etc');
  fs.file('/etc/hostname', 'memhost\n');
  fs.dir('/usr');
  fs.dir('/usr/lib');
  fs.file('/usr/lib/os-release', 'ID=mem\n');
  fs.link('/etc/os-release', '../usr/lib/os-release');
  fs.link('/abs', '/etc/hostname');
  fs.link('/escape', '../../../../../../etc/hostname');
  fs.link('/escape-abs', '/../../etc/hostname');
  fs.link('/lib', 'usr/lib');
  fs.link('/loop-a', 'loop-b');
  fs.link('/loop-b', 'loop-a');
  fs.link('/self', 'self');
  fs.link('/empty', '');
  fs.link('/dangling', '/nowhere');
  fs.link('/etc-dir', '/etc/');
  fs.link('/dotdot-after-link', 'lib/../../etc/hostname');
  fs.dir('/chain');
  fs.file('/chain/end', 'end of chain');
  // /chain/l0 → l1 → ... → l{n-1} → end
  for (let i = 0; i < 45; i++) fs.link(`/chain/l${i}`, i === 44 ? 'end' : `l${i + 1}`);
  return fs;
}

function pathError(code: string, pattern?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof GuestPathError, String(err));
    assert.equal(err.code, code);
    assert.equal(err.userFacing, true);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

describe('guest: path resolution (in-memory filesystem)', function () {
  let g: GuestFilesystem;
  let fs: MemFs;
  beforeEach(function () {
    fs = sampleFs();
    g = new GuestFilesystem(fs, '/dev/sdz9');
  });

  it('follows relative and absolute symlinks inside the filesystem', async function () {
    assert.equal((await g.readFile('/etc/os-release')).toString(), 'ID=mem\n');
    assert.equal((await g.readFile('/abs')).toString(), 'memhost\n');
    assert.equal((await g.readFile('/lib/os-release')).toString(), 'ID=mem\n');
    assert.equal(await g.realpath('/lib/os-release'), '/usr/lib/os-release');
    assert.equal(await g.realpath('/etc-dir'), '/etc');
  });

  it('keeps ".." at the root and never leaves the filesystem, in paths and in link targets', async function () {
    assert.equal(await g.realpath('/../../..'), '/');
    assert.equal((await g.readFile('/../../etc/hostname')).toString(), 'memhost\n');
    assert.equal((await g.readFile('../etc/./hostname')).toString(), 'memhost\n');
    assert.equal((await g.readFile('/escape')).toString(), 'memhost\n');
    assert.equal((await g.readFile('/escape-abs')).toString(), 'memhost\n');
    assert.equal(await g.realpath('/escape'), '/etc/hostname');
  });

  it('resolves ".." after a followed symlink from where the link led (the physical parent)', async function () {
    // /lib → usr/lib, so /lib/.. is /usr, not /.
    assert.equal(await g.realpath('/lib/..'), '/usr');
    assert.equal((await g.readFile('/lib/../lib/os-release')).toString(), 'ID=mem\n');
    assert.equal((await g.readFile('/dotdot-after-link')).toString(), 'memhost\n');
    await assert.rejects(g.stat('/lib/../etc'), pathError('ENOENT', /\/usr\/etc does not exist/));
  });

  it('lstat and readlink describe the link itself; stat follows it', async function () {
    assert.equal((await g.lstat('/abs')).type, 'symlink');
    assert.equal((await g.stat('/abs')).type, 'file');
    assert.equal(await g.readlink('/abs'), '/etc/hostname');
    assert.equal(await g.readlink('/lib'), 'usr/lib');
    // A trailing slash asks for the directory the link points to.
    assert.equal((await g.lstat('/lib/')).type, 'directory');
    await assert.rejects(g.readlink('/etc/hostname'), pathError('EINVAL', /\/dev\/sdz9:\/etc\/hostname: invalid argument \(not a symbolic link but a regular file\)/));
  });

  it('fails with ELOOP on symlink loops, and allows exactly 40 links in one resolution', async function () {
    await assert.rejects(g.stat('/loop-a'), pathError('ELOOP', /\/dev\/sdz9:\/loop-a: too many levels of symbolic links/));
    assert.ok(fs.lookups <= MAX_SYMLINKS + 2, `${fs.lookups} lookups for one loop`);
    await assert.rejects(g.readFile('/self'), pathError('ELOOP'));
    await assert.rejects(g.stat('/loop-a/x'), pathError('ELOOP'));
    assert.equal(await g.readlink('/loop-a'), 'loop-b', 'readlink does not follow');
    assert.equal((await g.lstat('/self')).type, 'symlink');
    // l5 → ... → l44 → end: 40 links.
    assert.equal((await g.readFile(`/chain/l${44 - MAX_SYMLINKS + 1}`)).toString(), 'end of chain');
    await assert.rejects(g.readFile(`/chain/l${44 - MAX_SYMLINKS}`), pathError('ELOOP'));
  });

  it('names the guest path and device in ENOENT and ENOTDIR errors', async function () {
    await assert.rejects(g.stat('/etc/missing'), pathError('ENOENT', /^\/dev\/sdz9:\/etc\/missing: no such file or directory \(\/etc\/missing does not exist\)$/));
    await assert.rejects(g.stat('/dangling'), pathError('ENOENT', /\/nowhere does not exist/));
    await assert.rejects(g.stat('/empty'), pathError('ENOENT', /empty target/));
    await assert.rejects(g.stat(''), pathError('ENOENT'));
    await assert.rejects(g.stat('/etc/hostname/x'), pathError('ENOTDIR', /\/etc\/hostname is a regular file, not a directory/));
    await assert.rejects(g.stat('/etc/hostname/'), pathError('ENOTDIR'));
    await assert.rejects(g.stat('/abs/..'), pathError('ENOTDIR'));
    await assert.rejects(g.readdir('/etc/hostname'), pathError('ENOTDIR'));
    await assert.rejects(g.readFile('/etc'), pathError('EISDIR', /\/dev\/sdz9:\/etc: is a directory/));
    await assert.rejects(g.stat('/a\0b'), pathError('EINVAL'));
    await assert.rejects(g.stat(`/${'x'.repeat(256)}`), pathError('ENAMETOOLONG'));
    await assert.rejects(g.stat(`/${'a/'.repeat(2100)}`), pathError('ENAMETOOLONG'));
  });

  it('readdir lists a directory through symlinks', async function () {
    assert.deepEqual((await g.readdir('/lib')).map((e) => e.name), ['os-release']);
    assert.deepEqual((await g.readdir('/etc-dir')).map((e) => e.name), ['hostname', 'os-release']);
  });

  it('createReadStream reads [start, end] in chunks of highWaterMark, with bounded reads', async function () {
    const big = fs.add('/big', { type: 'file', mode: 0o100644, virtualSize: 10 * MiB + 7 });
    assert.ok(big > 0);
    const chunks: Buffer[] = [];
    for await (const c of g.createReadStream('/big', { start: 100, end: 300_099, highWaterMark: 65536 })) chunks.push(c as Buffer);
    const all = Buffer.concat(chunks);
    assert.equal(all.length, 300_000);
    assert.equal(all[0], 100 & 0xff);
    assert.equal(all[all.length - 1], 300_099 & 0xff);
    assert.ok(fs.reads.every((n) => n <= 65536), `reads ${fs.reads.join(',')}`);
    // The whole file, default chunks: the sum is right and no read is larger than a chunk.
    fs.reads = [];
    const h = createHash('sha256');
    let total = 0;
    for await (const c of g.createReadStream('/big')) {
      h.update(c as Buffer);
      total += (c as Buffer).length;
    }
    assert.equal(total, 10 * MiB + 7);
    assert.ok(Math.max(...fs.reads) <= 256 * 1024, `reads ${Math.max(...fs.reads)}`);
    // Empty ranges and the end of file.
    assert.equal(await collect(g.createReadStream('/etc/hostname', { start: 8 })), '');
    assert.equal(await collect(g.createReadStream('/etc/hostname', { start: 3, end: 2 })), '');
    assert.equal(await collect(g.createReadStream('/etc/hostname', { start: 2, end: 100 })), 'mhost\n');
    assert.equal(await collect(g.createReadStream('/abs', { end: 2 })), 'mem');
  });

  it('createReadStream reports resolution errors as stream errors, bad ranges at once', async function () {
    await assert.rejects(collect(g.createReadStream('/nope')), pathError('ENOENT'));
    await assert.rejects(collect(g.createReadStream('/etc')), pathError('EISDIR'));
    assert.throws(() => g.createReadStream('/etc/hostname', { start: -1 }), pathError('EINVAL'));
    assert.throws(() => g.createReadStream('/etc/hostname', { start: 5, end: 1 }), pathError('EINVAL'));
  });

  it('readFile refuses a file above maxBytes with a typed error (stream it instead)', async function () {
    fs.add('/huge', { type: 'file', mode: 0o100644, virtualSize: 3 * MiB });
    await assert.rejects(g.readFile('/huge', { maxBytes: MiB }), (err: unknown) => {
      assert.ok(err instanceof FileTooLargeError);
      assert.match(err.message, /\/dev\/sdz9:\/huge: file is 3145728 bytes, more than readFile accepts \(1048576\); use createReadStream/);
      return true;
    });
    assert.equal((await g.readFile('/huge')).length, 3 * MiB);
    assert.ok(Math.max(...fs.reads) <= MiB + 1);
  });

  it('statfs, type, label come from the driver', async function () {
    assert.equal((await g.statfs()).bsize, 4096);
    assert.equal(g.type, 'memfs');
    assert.equal(g.label, 'mem');
  });
});

async function collect(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

// ---------------------------------------------------------------------------
// End to end on real ext4 images.

async function buildTree(root: string): Promise<void> {
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'usr/lib'), { recursive: true });
  await mkdir(join(root, 'var/log'), { recursive: true });
  await mkdir(join(root, 'deep/a/b/c/d'), { recursive: true });
  await writeFile(join(root, 'etc/hostname'), 'guest-one\n');
  await writeFile(join(root, 'usr/lib/os-release'), 'ID=debian\nVERSION_ID="12"\n');
  await writeFile(join(root, 'var/log/syslog'), Buffer.alloc(3 * MiB + 123, 'log line\n'));
  await writeFile(join(root, 'deep/a/b/c/d/leaf'), 'leaf');
  await writeFile(join(root, 'ünïcødé name.txt'), 'unicode\n');
  await writeFile(join(root, 'empty'), '');
  await chmod(join(root, 'etc/hostname'), 0o600);
  await symlink('../usr/lib/os-release', join(root, 'etc/os-release'));
  await symlink('/etc/hostname', join(root, 'abs-link'));
  await symlink('../../../../../../../etc/hostname', join(root, 'escaping-link'));
  await symlink('deep/a/b', join(root, 'dirlink'));
  await symlink('loop2', join(root, 'loop1'));
  await symlink('loop1', join(root, 'loop2'));
  await symlink('/' + 'x'.repeat(200) + '/y', join(root, 'long-dangling'));
}

/** The same tree shape as kernel.ts's walkMounted, but through the path-level API only. */
async function walkGuest(g: GuestFilesystem): Promise<TreeNode[]> {
  const out: TreeNode[] = [];
  const visit = async (path: string) => {
    const st = await g.lstat(path);
    const node = treeNodeOf(path, st);
    if (st.type === 'symlink') node.target = await g.readlink(path);
    if (st.type === 'file') {
      const h = createHash('sha256');
      for await (const c of g.createReadStream(path, { highWaterMark: 256 * 1024 })) h.update(c as Buffer);
      node.sha256 = h.digest('hex');
      const whole = await g.readFile(path);
      assert.equal(createHash('sha256').update(whole).digest('hex'), node.sha256, `${path}: readFile and the stream agree`);
    }
    out.push(node);
    if (st.type === 'directory') {
      for (const e of await g.readdir(path)) {
        const child = path === '/' ? `/${e.name}` : `${path}/${e.name}`;
        if (child !== '/lost+found') await visit(child);
      }
    }
  };
  await visit('/');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** [operation, path] pairs resolved both by us and by busybox under chroot. */
const CHROOT_PROBES: Array<['cat' | 'realpath', string]> = [
  ['cat', '/etc/os-release'],
  ['cat', '/abs-link'],
  ['cat', '/escaping-link'],
  ['cat', '/../../../etc/hostname'],
  ['cat', '/dirlink/c/d/leaf'],
  ['cat', '/dirlink/../b/c/d/leaf'],
  ['cat', '/dirlink/../../../../deep/a/b/c/d/leaf'],
  ['cat', '/ünïcødé name.txt'],
  ['cat', '/empty'],
  ['cat', '/loop1'],
  ['cat', '/long-dangling'],
  ['cat', '/etc/hostname/x'],
  ['cat', '/etc/hostname/'],
  ['cat', '/nonexistent'],
  ['cat', '/dirlink'],
  ['realpath', '/dirlink/..'],
  ['realpath', '/escaping-link'],
  ['realpath', '/etc/os-release'],
  ['realpath', '/../..'],
  ['realpath', '/loop2'],
];

/** busybox and the libraries it needs, copied into the tree so the kernel can run it chrooted into the mount. */
let chrootTools = false;

async function addChrootTools(root: string): Promise<boolean> {
  const busybox = await execa('which', ['busybox'], { reject: false });
  if (busybox.exitCode !== 0) return false;
  const bin = busybox.stdout.trim();
  const ldd = await execa('ldd', [bin], { reject: false });
  const files = [bin, ...[...ldd.stdout.matchAll(/(\/\S+\.so[^\s]*)/g)].map((m) => m[1])];
  for (const f of files) {
    const dest = join(root, f === bin ? '/bin/busybox' : f);
    await mkdir(join(dest, '..'), { recursive: true });
    await copyFile(f, dest);
    await chmod(dest, 0o755);
  }
  return true;
}

/** Run busybox OP PATH chrooted into `dir`: "ok <hex of stdout>" (cat) / "ok <path>" (realpath), or the errno name. */
async function insideChroot(dir: string, [op, path]: ['cat' | 'realpath', string]): Promise<string> {
  const r = await execa('chroot', [dir, '/bin/busybox', op, path], { reject: false, encoding: 'buffer', stripFinalNewline: false });
  const stdout = Buffer.from(r.stdout);
  if (r.exitCode === 0) return op === 'cat' ? `ok ${stdout.toString('hex')}` : `ok ${stdout.toString().trim()}`;
  const err = Buffer.from(r.stderr).toString();
  for (const [text, code] of [
    ['No such file or directory', 'ENOENT'],
    ['Too many levels of symbolic links', 'ELOOP'],
    ['Not a directory', 'ENOTDIR'],
    ['Is a directory', 'EISDIR'],
  ]) {
    if (err.includes(text)) return code;
  }
  return `exit ${r.exitCode}: ${err.trim()}`;
}

describe('guest: path resolution on a real ext4 (mkfs.ext4 -d)', function () {
  this.timeout(120_000);
  let image: string;
  before(async function () {
    const dir = scratchDir('guest-ext4');
    const src = join(dir, 'tree');
    await buildTree(src);
    chrootTools = await addChrootTools(src);
    image = await blank(join(dir, 'fs.img'), 32 * MiB);
    await sh('mkfs.ext4', ['-q', '-F', '-d', src, image]);
  });

  it('follows links inside the guest, keeps .. at the root, and stops loops, as the kernel does under chroot', async function () {
    await guardImages([image], () =>
      withGuest([image], async (guest) => {
        const g = await (await guest.filesystem('/dev/sda'))!.open();
        assert.equal((await g.readFile('/etc/os-release')).toString(), 'ID=debian\nVERSION_ID="12"\n');
        assert.equal((await g.readFile('/abs-link')).toString(), 'guest-one\n');
        assert.equal((await g.readFile('/escaping-link')).toString(), 'guest-one\n');
        assert.equal((await g.readFile('/../../../etc/hostname')).toString(), 'guest-one\n');
        assert.equal((await g.readFile('/dirlink/c/d/leaf')).toString(), 'leaf');
        assert.equal(await g.realpath('/dirlink/..'), '/deep/a');
        assert.equal((await g.stat('/dirlink')).type, 'directory');
        await assert.rejects(g.stat('/loop1'), pathError('ELOOP', /^\/dev\/sda:\/loop1: too many levels/));
        await assert.rejects(g.stat('/long-dangling'), pathError('ENOENT'));
        await assert.rejects(g.readFile('/etc/hostname/x'), pathError('ENOTDIR'));
        await assert.rejects(g.readFile('/nonexistent'), pathError('ENOENT', /^\/dev\/sda:\/nonexistent: no such file/));
        assert.equal((await g.stat('/ünïcødé name.txt')).size, 8);
        assert.equal((await g.statfs()).bsize > 0, true);
      }, { overlay: false }),
    );
  });

  it('resolves every path exactly as the kernel does under chroot(2) into the loop-mounted filesystem', async function () {
    const why = (await loopMountUnavailable()) ?? (chrootTools ? undefined : 'no busybox to run inside the chroot');
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
    const kernel = await withKernelMount(image, {}, async (m) => {
      const out: string[] = [];
      for (const p of CHROOT_PROBES) out.push(await insideChroot(m.dir, p));
      return out;
    });
    const ours = await withGuest([image], async (guest) => {
      const g = await (await guest.filesystem('/dev/sda'))!.open();
      const out: string[] = [];
      for (const [op, path] of CHROOT_PROBES) {
        try {
          out.push(op === 'cat' ? `ok ${(await g.readFile(path)).toString('hex')}` : `ok ${await g.realpath(path)}`);
        } catch (err) {
          if (!(err instanceof GuestPathError)) throw err;
          out.push(err.code === 'EINVAL' ? 'EINVAL' : err.code);
        }
      }
      return out;
    }, { overlay: false });
    assert.deepEqual(
      CHROOT_PROBES.map((p, i) => `${p.join(' ')} → ${ours[i]}`),
      CHROOT_PROBES.map((p, i) => `${p.join(' ')} → ${kernel[i]}`),
    );
    assert.ok(kernel.filter((k) => k.startsWith('ok')).length >= 8 && kernel.includes('ELOOP') && kernel.includes('ENOTDIR'), kernel.join('\n'));
  });
});
