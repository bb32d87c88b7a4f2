/**
 * The XFS driver against the running kernel: for each mkfs.xfs variant,
 * filled through a read-write loop mount, our statfs, our whole file tree
 * (names, types, modes, sizes, owners, link counts, st_blocks, all four
 * timestamps to the nanosecond, device numbers, symlink targets, content
 * hashes), every extended attribute and the extent maps of the fragmented
 * files must equal what a read-only loop mount of the same image shows.
 */
import assert from 'node:assert/strict';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { RawFileSource } from '@guestlens/qcow2-js';
import { XfsFilesystem } from '../../../src/filesystems/xfs/index.ts';
import { directoryForm } from '../../../src/filesystems/xfs/directory.ts';
import { readInode } from '../../../src/filesystems/xfs/inode.ts';
import { DIFLAG2, FMT, XFS_ATTR3_LEAF_MAGIC, XFS_ATTR_LEAF_MAGIC, XFS_DA3_NODE_MAGIC, XFS_DA_NODE_MAGIC } from '../../../src/filesystems/xfs/layout.ts';
import { readDaBlock } from '../../../src/filesystems/xfs/daBlock.ts';
import { daMagic } from '../../../src/filesystems/xfs/daTree.ts';
import { sh } from '../../../../../test/support/run.ts';
import { kernelStatfs, loopMountUnavailable, unmountAll, walkDriver, walkMounted, withKernelMount } from '../../../../../test/support/kernel.ts';
import { BIG_DIR, SPARSE_BIG_DATA, SPARSE_BIG_SIZE, buildKernelImage, guardSparseImage, pseudoRandom, type Variant } from './xfsFixtures.ts';
import { driverPaths, driverXattrs, kernelExtents, kernelXattrs, mergeExtents } from './xfsOracle.ts';

const MAX_HASH = 64 * 1024 * 1024;

const small = { bigDirEntries: 1200, holeExtents: 400, interleavedAppends: 60 };

export const VARIANTS: Variant[] = [
  {
    name: 'mkfs.xfs defaults (v5: reflink, finobt, bigtime, inobtcount, sparse inodes), a 20000-entry directory, a 5 GiB sparse file, a two-level bmap btree',
    mkfsArgs: [],
    size: '1G',
    bigtime: true,
    extras: { bigDirEntries: 20_000, bigSparse: true, holeExtents: 6000, interleavedAppends: 300, reflink: true },
  },
  { name: 'rmapbt on', mkfsArgs: ['-m', 'rmapbt=1'], size: '1G', bigtime: true, extras: { ...small, reflink: true } },
  { name: 'one AG; finobt, reflink, bigtime and inobtcount off', mkfsArgs: ['-d', 'agcount=1', '-m', 'finobt=0,reflink=0,bigtime=0,inobtcount=0'], size: '700M', bigtime: false, extras: small, small: true },
  { name: '64 AGs, 4 KiB sectors, 2 KiB inodes', mkfsArgs: ['-d', 'agcount=64', '-s', 'size=4096', '-i', 'size=2048'], size: '2G', bigtime: true, extras: small, small: true },
  {
    name: 'nrext64, 1 KiB blocks, 8 KiB directory blocks',
    mkfsArgs: ['-b', 'size=1024', '-n', 'size=8192', '-i', 'nrext64=1'],
    size: '1G',
    bigtime: true,
    extras: { bigDirEntries: 2000, holeExtents: 1500, interleavedAppends: 100 },
  },
  { name: '64 KiB directory blocks, 1 KiB inodes', mkfsArgs: ['-n', 'size=65536', '-i', 'size=1024'], size: '1G', bigtime: true, extras: small },
  {
    name: 'inode64 on a 4 TiB sparse image: inode numbers beyond 2^32 (8-byte inode numbers in short-form directories)',
    mkfsArgs: ['-l', 'size=64m'],
    size: '4T',
    bigtime: true,
    extras: { bigDirEntries: 600, spreadDirs: 40 },
  },
];

/** The magic of block 0 of an inode's attribute fork: a leaf or the root of a node tree. */
async function attrBlock0Magic(fs: XfsFilesystem, ino: number): Promise<number> {
  const inode = await readInode(fs.volume, ino);
  const block = await readDaBlock({ vol: fs.volume, inode, fork: inode.attr! }, 0, 1, 'attribute block 0');
  return daMagic(block!);
}

describe('xfs driver: statfs, file tree, times, xattrs and extents equal the kernel\'s read-only mount', function () {
  this.timeout(900_000);
  let noLoop: string | undefined;
  before(async () => {
    noLoop = await loopMountUnavailable();
  });
  afterEach(unmountAll);

  for (const variant of VARIANTS) {
    it(variant.name, async function () {
      if (noLoop) {
        console.log(`      loop mounts impossible here (${noLoop}): the kernel oracle cannot run`);
        this.skip();
      }
      const t0 = Date.now();
      const lap = (what: string) => process.env.XFS_TEST_TIMES && console.log(`      ${what}: ${Date.now() - t0} ms`);
      const image = await buildKernelImage(variant);
      lap('built');
      await guardSparseImage(image, async () => {
        const src = await RawFileSource.open(image);
        try {
          const fs = await XfsFilesystem.open(src);
          assert.equal(fs.type, 'xfs');
          assert.equal(fs.label, 'fixture');
          assert.equal(fs.uuid, (await sh('blkid', ['-p', '-o', 'value', '-s', 'UUID', image])).trim());
          const ours = await fs.statfs();
          assert.equal(ours.exact, true, ours.reason);
          const walkOptions = { maxHashBytes: MAX_HASH, times: true, birthTime: true, devices: true };
          const ourTree = await walkDriver(fs, walkOptions);
          lap('our walk');
          assert.ok(ourTree.length > 100, `only ${ourTree.length} entries walked`);
          const paths = await driverPaths(fs);
          const ourXattrs = await driverXattrs(fs, paths);
          lap('our xattrs');

          // The fixture covers what it claims to.
          const vol = fs.volume;
          const formOf = async (p: string) => directoryForm(vol, await readInode(vol, paths.get(p)!));
          assert.equal(await formOf('/small'), 'shortform');
          assert.equal(await formOf('/dirs/block'), 'block');
          // A leaf block holds (directory block size / 8) hash entries: more entries than that need node form.
          assert.equal(await formOf(BIG_DIR), variant.extras.bigDirEntries * 8 > vol.sb.dirBlockSize ? 'node' : 'leaf');
          if (variant.extras.holeExtents) {
            const holes = await readInode(vol, paths.get('/frag/holes')!);
            assert.equal(holes.data.format, FMT.BTREE, 'the hole-fragmented file has a bmap btree');
            if (variant.extras.holeExtents >= 6000) assert.ok(holes.data.bytes.readUInt16BE(0) >= 2, 'the bmap btree is two levels deep');
          }
          assert.ok(ourXattrs.get('/xattrs/acl')?.has('system.posix_acl_access'));
          assert.equal((await readInode(vol, paths.get('/xattrs/shortform')!)).attr!.format, FMT.LOCAL);
          assert.equal((await readInode(vol, paths.get('/xattrs/leaf')!)).attr!.format, FMT.EXTENTS);
          assert.equal(await attrBlock0Magic(fs, paths.get('/xattrs/leaf')!), vol.sb.hasCrc ? XFS_ATTR3_LEAF_MAGIC : XFS_ATTR_LEAF_MAGIC, 'leaf-form attributes');
          assert.equal(await attrBlock0Magic(fs, paths.get('/xattrs/node')!), vol.sb.hasCrc ? XFS_DA3_NODE_MAGIC : XFS_DA_NODE_MAGIC, 'node-form attributes');
          if (variant.extras.interleavedAppends) {
            const ia = await fs.extents!(paths.get('/frag/interleaved-a')!);
            assert.ok(mergeExtents(ia).length > 10, `interleaved appends left only ${mergeExtents(ia).length} extents: the fixture does not fragment`);
          }
          if (variant.mkfsArgs.some((a) => a.includes('nrext64=1'))) {
            const flagged = await readInode(vol, paths.get('/frag/holes')!);
            assert.ok(flagged.di_flags2 & DIFLAG2.NREXT64, 'inodes do not use the large extent counters: nrext64 is not covered');
          }
          if (variant.extras.spreadDirs) {
            const big = [...paths.values()].filter((ino) => ino > 2 ** 32);
            assert.ok(big.length > 0, 'no inode number above 2^32');
          }

          await withKernelMount(image, {}, async (m) => {
            const { exact: _e, reason: _r, ...figures } = ours;
            assert.deepEqual(figures, await kernelStatfs(m.dir), 'statfs differs from the kernel\'s stat -f');
            lap('mounted');
            const kernelTree = await walkMounted(m.dir, walkOptions);
            lap('kernel walk');
            assert.equal(ourTree.length, kernelTree.length, 'number of entries');
            for (let i = 0; i < kernelTree.length; i++) assert.deepEqual(ourTree[i], kernelTree[i]);
            assert.deepEqual(ourXattrs, await kernelXattrs(m.dir), 'extended attributes differ');
            lap('kernel xattrs');

            for (const p of ['/frag/holes', '/frag/interleaved-a', '/frag/interleaved-b', '/frag/unwritten', '/frag/prealloc-past-eof', '/frag/punched', '/frag/reflinked', '/files/f1500000', '/frag/sparse-5g']) {
              const ino = paths.get(p);
              if (ino === undefined) continue;
              const size = (await stat(join(m.dir, p))).size;
              assert.deepEqual(mergeExtents(await fs.extents!(ino)), await kernelExtents(join(m.dir, p), size), `extents of ${p}`);
            }
            if (variant.extras.bigSparse) {
              const ino = paths.get('/frag/sparse-5g')!;
              assert.equal((await fs.getattr(ino)).size, SPARSE_BIG_SIZE);
              const fh = await open(join(m.dir, 'frag', 'sparse-5g'), 'r');
              try {
                for (const [i, off] of SPARSE_BIG_DATA.entries()) {
                  const at = Math.max(0, off - 50);
                  const ourBytes = await fs.read(ino, at, 200);
                  const k = Buffer.alloc(ourBytes.length);
                  await fh.read(k, 0, k.length, at);
                  assert.ok(ourBytes.equals(k), `sparse file bytes around ${off} differ`);
                  assert.ok(ourBytes.includes(pseudoRandom(100, 1000 + i)), `data written at ${off} not found`);
                }
                assert.ok((await fs.read(ino, 3 * 2 ** 30, 4096)).equals(Buffer.alloc(4096)));
                assert.equal((await fs.read(ino, SPARSE_BIG_SIZE - 10, 4096)).length, 10);
              } finally {
                await fh.close();
              }
            }
          });

          lap('extents');
          // Lookups through the hash index of leaf and node directories (a fresh driver: nothing listed yet).
          const fresh = await XfsFilesystem.open(src);
          for (const dir of ['/dirs/leaf', BIG_DIR, '/dirs/shrunk']) {
            const dirIno = paths.get(dir)!;
            const names = [...paths.keys()].filter((p) => p.startsWith(`${dir}/`) && !p.slice(dir.length + 1).includes('/'));
            for (const [i, p] of names.entries()) {
              if (i % 5 !== 0 && i !== names.length - 1) continue;
              assert.equal(await fresh.lookup(dirIno, p.slice(dir.length + 1)), paths.get(p), `lookup of ${p}`);
            }
            assert.equal(await fresh.lookup(dirIno, 'no-such-entry'), undefined);
            assert.equal(await fresh.lookup(dirIno, '0000001-nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn'), undefined);
          }
          lap('lookups');
          // Every inode of the tree is among the in-use inodes the inode btrees list, and their count is the kernel's.
          const listed = new Set<number>();
          for await (const e of fs.inodes!()) {
            assert.equal(e.deleted, false);
            listed.add(e.ino);
          }
          for (const [p, ino] of paths) assert.ok(listed.has(ino), `${p} (inode ${ino}) not enumerated`);
          assert.equal(listed.size, ours.files - ours.ffree, 'in-use inodes');
          lap('inodes');
        } finally {
          await src.close();
        }
      });
    });
  }
});
