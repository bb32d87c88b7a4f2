/**
 * The FAT driver against the real tools (this kernel has no vfat driver to
 * mount with): FAT12 on a 1.44 MB floppy, FAT16, FAT32 with 512-byte
 * clusters and FAT32 with 4 KiB sectors, each filled by mcopy with a deep
 * tree, long Unicode names, 8.3 names with NT case bits, attributes, a
 * fragmented file and a deleted one. The tree must equal mdir -/ -b -a,
 * every file's bytes and modification time what mcopy copies out, cluster
 * chains mshowfat's, statfs fsck.fat -n -v's cluster counts, and the images
 * never change (checked once per volume, after all its tests).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RawFileSource } from '@guestlens/qcow2-js';
import { FatFilesystem } from '../../../src/filesystems/fat/index.ts';
import { driverFor } from '../../../src/filesystems/registry.ts';
import { probeFilesystem } from '../../../src/probe/index.ts';
import type { FileStat } from '../../../src/filesystems/filesystem.ts';
import { assertImageUnchanged, snapshotImage, type ImageSnapshot } from '../../../../../test/support/imageGuard.ts';
import {
  buildFat,
  decorate,
  driverTree,
  fsckCounts,
  mtools,
  mtoolsAttributes,
  mtoolsClusters,
  mtoolsExtract,
  mtoolsTree,
  standardTree,
  type FatFixture,
} from './fatFixtures.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

interface Variant {
  name: string;
  sizeBytes: number;
  mkfsArgs: string[];
  clusterSize: number;
  fatBits: 12 | 16 | 32;
  label: string;
  tree: { depth?: number; many?: number; big?: boolean };
}

const VARIANTS: Variant[] = [
  { name: 'fat12-floppy', sizeBytes: 1440 * KiB, mkfsArgs: ['-F', '12', '-n', 'FLOPPY'], clusterSize: 512, fatBits: 12, label: 'FLOPPY', tree: { depth: 8, many: 30 } },
  { name: 'fat16', sizeBytes: 64 * MiB, mkfsArgs: ['-F', '16', '-n', 'FAT16 VOL'], clusterSize: 2048, fatBits: 16, label: 'FAT16 VOL', tree: { depth: 30, many: 300, big: true } },
  { name: 'fat32', sizeBytes: 64 * MiB, mkfsArgs: ['-F', '32', '-n', 'ESP'], clusterSize: 512, fatBits: 32, label: 'ESP', tree: { depth: 30, many: 300, big: true } },
  { name: 'fat32-4k', sizeBytes: 320 * MiB, mkfsArgs: ['-F', '32', '-S', '4096', '-n', 'BIG SECTOR'], clusterSize: 4096, fatBits: 32, label: 'BIG SECTOR', tree: { depth: 16, many: 120 } },
];

async function withFs<T>(fx: FatFixture, fn: (fs: FatFilesystem) => Promise<T>): Promise<T> {
  const src = await RawFileSource.open(fx.path);
  try {
    return await fn(await FatFilesystem.open(src));
  } finally {
    await src.close();
  }
}

/** Inode of a path, by lookups from the root. */
async function resolve(fs: FatFilesystem, path: string): Promise<number> {
  let ino = fs.rootIno;
  for (const part of path.split('/').filter(Boolean)) {
    const next = await fs.lookup(ino, part);
    assert.ok(next !== undefined, `lookup of ${part} in ${path}`);
    ino = next;
  }
  return ino;
}

/** Every path under a host directory (files and directories), relative, with a leading "/". */
function hostPaths(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, rel))) {
    const p = `${rel}/${name}`;
    out.push(p);
    if (lstatSync(join(root, p)).isDirectory()) out.push(...hostPaths(root, p));
  }
  return out;
}

for (const v of VARIANTS) {
  describe(`FAT driver: ${v.name} against mtools and fsck.fat`, function () {
    this.timeout(240_000);
    let fx: FatFixture;
    let snapshot: ImageSnapshot;

    before(async () => {
      fx = await buildFat(v.name, { sizeBytes: v.sizeBytes, mkfsArgs: v.mkfsArgs, tree: standardTree(v.clusterSize, v.tree), after: (img) => decorate(img, v.clusterSize) });
      snapshot = await snapshotImage(fx.path);
    });

    // The driver only reads: after all of the suite's tests (mtools reads too), the image is bit for bit what it was, mtime included.
    after(async () => {
      if (snapshot) await assertImageUnchanged(snapshot);
    });

    it('lists the tree mdir -/ -b -a lists, with long names, NT case bits and code page 437', async () => {
      const theirs = await mtoolsTree(fx.path);
      const ours = await withFs(fx, async (fs) => {
        assert.equal(fs.fatType, `FAT${v.fatBits}`);
        return driverTree(fs);
      });
      assert.deepEqual(ours, theirs);
      for (const p of ['/MixedCase.Txt', '/UPPER.txt', '/lower.TXT', '/日本語のファイル名.txt', '/ÇA VA.TXT', `/${'n'.repeat(251)}.dat`, '/EFI/BOOT/BOOTX64.EFI', '/EFI/debian/grubx64.efi', '/empty-dir/']) {
        assert.ok(ours.includes(p), p);
      }
    });

    it('reads every file as mcopy copies it out, with its modification time', async () => {
      const out = await mtoolsExtract(fx.path);
      const paths = hostPaths(out);
      await withFs(fx, async (fs) => {
        for (const p of paths) {
          const host = lstatSync(join(out, p));
          const st = await fs.getattr(await resolve(fs, p));
          assert.equal(st.type, host.isDirectory() ? 'directory' : 'file', p);
          // mtools 4.0.32 takes 2100 for a leap year: its times from March 2100 on are a day late (ours are checked against Date.UTC below).
          const mtoolsLeapBug = st.mtime.sec >= Date.UTC(2100, 2, 1) / 1000 ? 86400 : 0;
          assert.equal(st.mtime.sec + mtoolsLeapBug, Math.floor(host.mtimeMs / 1000), `${p} mtime`);
          if (!host.isDirectory()) {
            assert.equal(st.size, host.size, `${p} size`);
            const data = await fs.read(st.ino, 0, st.size + 10);
            assert.equal(createHash('sha256').update(data).digest('hex'), createHash('sha256').update(readFileSync(join(out, p))).digest('hex'), `${p} content`);
            // A read in the middle, across cluster boundaries.
            if (st.size > 3 * v.clusterSize) {
              const off = v.clusterSize - 3;
              assert.deepEqual(await fs.read(st.ino, off, 2 * v.clusterSize + 7), readFileSync(join(out, p)).subarray(off, off + 2 * v.clusterSize + 7), `${p} middle`);
            }
          }
        }
      });
      // The source times survived mcopy -m, rounded down to FAT's 2 seconds.
      await withFs(fx, async (fs) => {
        const st = await fs.getattr(await resolve(fs, '/MixedCase.Txt'));
        assert.equal(st.mtime.sec, Date.UTC(2020, 1, 29, 13, 37, 40) / 1000);
        assert.equal((await fs.getattr(await resolve(fs, '/sizes/size-0.bin'))).mtime.sec, Date.UTC(1980, 0, 1) / 1000);
        assert.equal((await fs.getattr(await resolve(fs, '/日本語のファイル名.txt'))).mtime.sec, Date.UTC(2107, 11, 31, 23, 59, 58) / 1000);
      });
    });

    it('shows modes, owners, link counts and block counts as the vfat driver does (uid 0, fmask/dmask 022, read-only attribute)', async () => {
      const attrs = await mtoolsAttributes(fx.path);
      const tree = await mtoolsTree(fx.path);
      await withFs(fx, async (fs) => {
        const root = await fs.getattr(fs.rootIno);
        const rootSubdirs = tree.filter((p) => /^\/[^/]+\/$/.test(p)).length;
        assert.deepEqual([root.mode, root.nlink, root.uid, root.gid, root.mtime.sec], [0o040755, rootSubdirs + 2, 0, 0, 0]);
        for (const p of tree) {
          const isDir = p.endsWith('/');
          const path = isDir ? p.slice(0, -1) : p;
          const st: FileStat = await fs.getattr(await resolve(fs, path));
          const a = attrs.get(path) ?? '';
          const expectMode = isDir ? 0o040755 : a.includes('R') ? 0o100555 : 0o100755;
          assert.equal(st.mode, expectMode, `${p} mode (attributes ${a})`);
          assert.deepEqual([st.uid, st.gid], [0, 0]);
          if (isDir) {
            const children = tree.filter((q) => q.startsWith(p) && q !== p && q.slice(p.length).split('/').length === 2 && q.endsWith('/')).length;
            assert.equal(st.nlink, children + 2, `${p} nlink`);
            assert.equal(st.size % v.clusterSize, 0, `${p} size`);
          } else {
            assert.equal(st.nlink, 1);
          }
          assert.equal(st.blocks, (Math.ceil(st.size / v.clusterSize) * v.clusterSize) / 512, `${p} blocks`);
          assert.deepEqual(st.ctime, st.mtime);
          assert.equal(st.atime.sec % 86400, 0, `${p} atime is a date`);
          assert.ok(st.crtime && st.crtime.nsec % 10_000_000 === 0, `${p} crtime in 10 ms`);
        }
        assert.ok([...attrs.values()].some((a) => a.includes('R')), 'no read-only file in the fixture');
      });
    });

    it('gives statfs the kernel computes, equal to fsck.fat -n -v cluster counts', async () => {
      const fsck = await fsckCounts(fx.path);
      const st = await withFs(fx, (fs) => fs.statfs());
      assert.equal(fsck.fatBits, v.fatBits);
      assert.equal(fsck.clusterSize, v.clusterSize);
      assert.deepEqual(st, {
        bsize: fsck.clusterSize,
        blocks: fsck.dataClusters,
        bfree: fsck.dataClusters - fsck.usedClusters,
        bavail: fsck.dataClusters - fsck.usedClusters,
        files: 0,
        ffree: 0,
        namelen: 1530,
        exact: true,
      });
    });

    it('maps cluster chains as mshowfat shows them, the fragmented file included', async () => {
      const paths = ['/frag/fragmented file.bin', '/EFI/BOOT/BOOTX64.EFI', `/sizes/size-${5 * v.clusterSize + 7}.bin`, `/sizes/size-${v.clusterSize}.bin`];
      await withFs(fx, async (fs) => {
        const cs = fs.volume.clusterSize;
        for (const p of paths) {
          const runs = await mtoolsClusters(fx.path, p);
          const st = await fs.getattr(await resolve(fs, p));
          const extents = await fs.extents(st.ino);
          const expected = runs.map(([a, b]) => ({ physical: fs.volume.clusterOffset(a), clusters: b - a + 1 }));
          assert.deepEqual(
            extents.map((e) => ({ physical: e.physical, clusters: Math.ceil(e.length / cs) })),
            expected,
            p,
          );
          assert.equal(extents.reduce((n, e) => n + e.length, 0), st.size);
          assert.ok(extents.every((e) => e.kind === 'data'));
        }
        assert.ok((await mtoolsClusters(fx.path, '/frag/fragmented file.bin')).length > 1, 'the fragmented file is one run');
        const empty = await fs.getattr(await resolve(fs, '/sizes/size-0.bin'));
        assert.deepEqual(await fs.extents(empty.ino), []);
      });
    });

    it('has the label, serial and FAT type mlabel, minfo and blkid see', async () => {
      const mlabel = await mtools('mlabel', ['-s', '-i', fx.path, '::']);
      const serial = /serial number: ([0-9A-F]{8})/.exec(await mtools('minfo', ['-i', fx.path, '::']))![1];
      await withFs(fx, async (fs) => {
        assert.match(mlabel, new RegExp(`Volume label is ${fs.label}\\s*$`));
        assert.equal(fs.label, v.label);
        assert.equal(fs.bootLabel, v.label);
        assert.equal(fs.uuid, `${serial.slice(0, 4)}-${serial.slice(4)}`);
        const probe = await probeFilesystem(fs.source);
        assert.deepEqual([probe.type, probe.label, probe.uuid, probe.version], ['vfat', fs.rootLabel, fs.uuid, fs.fatType]);
        assert.deepEqual(fs.warnings, []);
        // The registry opens vfat with this driver.
        const viaRegistry = await driverFor('vfat')!(fs.source);
        assert.equal(viaRegistry.type, 'vfat');
        assert.equal(driverFor('msdos'), driverFor('vfat'));
      });
    });

    it('looks names up as the vfat driver does: ASCII case ignored, 8.3 aliases, trailing dots dropped', async () => {
      await withFs(fx, async (fs) => {
        const mixed = await resolve(fs, '/MixedCase.Txt');
        assert.equal(await fs.lookup(fs.rootIno, 'mixedcase.txt'), mixed);
        assert.equal(await fs.lookup(fs.rootIno, 'MIXEDCASE.TXT...'), mixed);
        assert.equal(await fs.lookup(fs.rootIno, 'MIXEDC~1.TXT'), mixed);
        assert.equal(await fs.lookup(fs.rootIno, 'mixedc~1.txt'), mixed);
        // Only ASCII folds: Ç is not ç.
        assert.ok(await fs.lookup(fs.rootIno, 'ÇA VA.TXT'));
        assert.equal(await fs.lookup(fs.rootIno, 'ça va.txt'), undefined);
        assert.equal(await fs.lookup(fs.rootIno, 'no such name'), undefined);
        assert.equal(await fs.lookup(fs.rootIno, '...'), undefined);
        await assert.rejects(fs.readdir(mixed), { code: 'ENOTDIR' });
        await assert.rejects(fs.read(await resolve(fs, '/EFI'), 0, 1), { code: 'EISDIR' });
        await assert.rejects(fs.readlink(mixed), { code: 'EINVAL' });
        await assert.rejects(fs.getattr(12345678901), { code: 'ENOENT' });
      });
    });

    it('numbers inodes by entry position (stable across refresh), and lists deleted entries apart', async () => {
      const raw = readFileSync(fx.path);
      await withFs(fx, async (fs) => {
        const deleted: number[] = [];
        for await (const e of fs.inodes!({ deleted: true })) if (e.deleted) deleted.push(e.ino);
        const listed = await driverTree(fs);
        const live: number[] = [];
        for await (const e of fs.inodes!()) live.push(e.ino);
        assert.equal(live.length, listed.length + 1, 'every entry and the root');
        assert.deepEqual(live, [...live].sort((a, b) => a - b), 'in inode order');
        assert.equal(new Set(live).size, live.length, 'unique');
        assert.equal(live[0], fs.rootIno);
        // An inode number is the entry's byte position / 32: the 8.3 name is there.
        const ino = await resolve(fs, '/EFI/BOOT/BOOTX64.EFI');
        assert.equal(raw.toString('latin1', ino * 32, ino * 32 + 11), 'BOOTX64 EFI');
        await fs.refresh();
        assert.equal(await resolve(fs, '/EFI/BOOT/BOOTX64.EFI'), ino);
        // Deleted: the mdel'd files of /frag, with their first character lost or their long name kept.
        const frag = await resolve(fs, '/frag');
        const gone = await fs.deletedEntries(frag);
        const names = gone.map((g) => g.name).sort();
        assert.deepEqual(names, ['_iece0.bin', '_iece2.bin', '_iece4.bin', '_iece6.bin', 'a deleted long name.txt']);
        for (const g of gone) {
          assert.equal(g.stat.nlink, 0);
          assert.ok(deleted.includes(g.ino), `${g.name} in inodes({deleted})`);
          await assert.rejects(fs.read(g.ino, 0, 1), { code: 'ENOENT' });
        }
      });
    });
  });
}
