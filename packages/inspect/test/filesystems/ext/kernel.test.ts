/**
 * The ext driver against the running kernel: for each feature variant, our
 * statfs and our whole file tree (names, types, modes, sizes, owners, link
 * counts, st_blocks, mtimes, symlink targets, content hashes) must equal what
 * `stat -f` and a walk of a read-only loop mount of the same image show.
 */
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { RawFileSource } from '@guestlens/qcow2-js';
import { openExt, ExtFilesystem } from '../../../src/filesystems/ext/index.ts';
import { readInode, INODE_FLAGS } from '../../../src/filesystems/ext/inode.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { sh } from '../../../../../test/support/run.ts';
import { kernelStatfs, loopMountUnavailable, unmountAll, walkDriver, walkMounted, withKernelMount, type TreeNode } from '../../../../../test/support/kernel.ts';
import { HTREE_DIR, SPARSE_BIG_DATA, SPARSE_BIG_SIZE, VARIANTS, buildImage, makeSourceTree, pseudoRandom } from './fixtures.ts';
import { BlockWindow as SliceSource } from '@guestlens/block';
import { scratchDir } from '../../../../../test/support/scratch.ts';

const MAX_HASH = 64 * 1024 * 1024;

/** Without a kernel mount: compare what dumpe2fs says with our statfs (the weaker check). */
async function dumpe2fsCheck(image: string, ours: { bfree: number; ffree: number; files: number; bsize: number }): Promise<void> {
  const out = await sh('dumpe2fs', ['-h', image]);
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(out);
    assert.ok(m, `dumpe2fs -h printed no "${name}"`);
    return Number(m[1]);
  };
  assert.equal(ours.files, field('Inode count'));
  assert.equal(ours.ffree, field('Free inodes'));
  assert.equal(ours.bsize, field('Block size'));
  assert.equal(ours.bfree, field('Free blocks'));
}

/** Without a kernel mount: extract the tree with debugfs rdump (it skips special files and drops set-id bits). */
async function debugfsTree(image: string): Promise<TreeNode[]> {
  const out = scratchDir('ext-rdump');
  await sh('debugfs', ['-R', `rdump / ${out}`, image]);
  return (await walkMounted(out)).map(comparable);
}

/** The fields rdump preserves. */
function comparable(n: TreeNode): TreeNode {
  return { path: n.path, type: n.type, size: n.type === 'directory' ? 0 : n.size, target: n.target, sha256: n.sha256, mode: 0, uid: 0, gid: 0, nlink: 0, blocks: 0, mtimeSec: 0 } as TreeNode;
}

describe('ext driver: statfs and file tree equal the kernel\'s', function () {
  this.timeout(300_000);
  let noLoop: string | undefined;
  before(async () => {
    noLoop = await loopMountUnavailable();
    if (noLoop) console.log(`      loop mounts impossible here (${noLoop}): falling back to dumpe2fs`);
  });
  afterEach(unmountAll);

  for (const variant of VARIANTS) {
    it(variant.name, async function () {
      const image = await buildImage(variant, { mounted: !noLoop && !variant.notMountable });
      await guardImages([image], async () => {
        const src = await RawFileSource.open(image);
        try {
          const fs = await openExt(src);
          assert.equal(fs.label, 'fixture');
          const blkidType = (await sh('blkid', ['-o', 'value', '-s', 'TYPE', image])).trim();
          assert.equal(fs.type, blkidType);
          assert.equal(fs.uuid, (await sh('blkid', ['-o', 'value', '-s', 'UUID', image])).trim());
          const ours = await fs.statfs();
          assert.equal(ours.exact, true, ours.reason);
          const ourTree = await walkDriver(fs, { maxHashBytes: MAX_HASH });
          assert.ok(ourTree.length > 40, `only ${ourTree.length} entries walked`);

          if (variant.expectHtree && !noLoop && !variant.notMountable) {
            const dirIno = await fs.lookup(fs.rootIno, HTREE_DIR.slice(1));
            assert.ok(dirIno);
            const inode = await readInode((fs as ExtFilesystem).volume, dirIno);
            assert.ok(inode.i_flags & INODE_FLAGS.INDEX, `${HTREE_DIR} is not an htree directory, the test would not cover htree`);
          }

          if (noLoop || variant.notMountable) {
            console.log(`      no kernel mount (${noLoop ?? variant.notMountable}): comparing with dumpe2fs and debugfs rdump`);
            await dumpe2fsCheck(image, ours);
            const special = new Set(['fifo', 'chardev', 'blockdev', 'socket']);
            const expected = await debugfsTree(image);
            const mine = ourTree.filter((n) => !special.has(n.type)).map(comparable);
            assert.deepEqual(mine.map((n) => n.path), expected.map((n) => n.path));
            assert.deepEqual(mine, expected);
            return;
          }
          await withKernelMount(image, {}, async (m) => {
            const kernel = await kernelStatfs(m.dir);
            const { exact: _e, reason: _r, ...oursFigures } = ours;
            assert.deepEqual(oursFigures, kernel, 'statfs differs from the kernel\'s stat -f');
            const kernelTree = await walkMounted(m.dir, { maxHashBytes: MAX_HASH });
            assert.equal(ourTree.length, kernelTree.length, 'number of entries');
            for (let i = 0; i < kernelTree.length; i++) assert.deepEqual(ourTree[i], kernelTree[i]);

            if (variant.bigSparse) {
              const ino = await fs.lookup((await fs.lookup(fs.rootIno, 'files'))!, 'sparse-5g');
              assert.ok(ino);
              assert.equal((await fs.getattr(ino)).size, SPARSE_BIG_SIZE);
              const fh = await open(join(m.dir, 'files', 'sparse-5g'), 'r');
              try {
                for (const [i, off] of SPARSE_BIG_DATA.entries()) {
                  const ourBytes = await fs.read(ino, off - 50 < 0 ? 0 : off - 50, 200);
                  const k = Buffer.alloc(ourBytes.length);
                  await fh.read(k, 0, k.length, off - 50 < 0 ? 0 : off - 50);
                  assert.ok(ourBytes.equals(k), `sparse file bytes around ${off} differ`);
                  assert.ok(ourBytes.includes(pseudoRandom(100, 1000 + i)), `data written at ${off} not found`);
                }
                // A hole in the middle reads as zeros.
                assert.ok((await fs.read(ino, 3 * 2 ** 30, 4096)).equals(Buffer.alloc(4096)));
                // Reads stop at end of file.
                assert.equal((await fs.read(ino, SPARSE_BIG_SIZE - 10, 4096)).length, 10);
              } finally {
                await fh.close();
              }
            }
          });
        } finally {
          await src.close();
        }
      });
    });
  }

  it('a filesystem inside an MBR partition (slice source; loop mount with offset and sizelimit)', async function () {
    if (noLoop) {
      console.log(`      loop mounts impossible here (${noLoop})`);
      this.skip();
    }
    const dir = scratchDir('ext-part');
    const disk = join(dir, 'disk.img');
    await sh('truncate', ['-s', '80M', disk]);
    await sh('sfdisk', ['--quiet', disk], { input: 'label: dos\nstart=2048, size=122880, type=83\n' });
    const offset = 2048 * 512;
    const size = 122880 * 512;
    const src = await makeSourceTree({ blockSize: 4096 });
    await sh('mkfs.ext4', ['-q', '-F', '-E', `offset=${offset}`, '-d', src, disk, `${size / 1024}k`]);
    await guardImages([disk], async () => {
      const raw = await RawFileSource.open(disk);
      try {
        const fs = await openExt(new SliceSource(raw, offset, size, `${disk} partition 1`));
        const ours = await fs.statfs();
        const ourTree = await walkDriver(fs);
        await withKernelMount(disk, { offset, sizelimit: size }, async (m) => {
          const { exact: _e, reason: _r, ...figures } = ours;
          assert.deepEqual(figures, await kernelStatfs(m.dir));
          assert.deepEqual(ourTree, await walkMounted(m.dir));
        });
      } finally {
        await raw.close();
      }
    });
  });

  for (const args of [['-b', '4096', '-O', 'bigalloc', '-C', '65536'], ['-b', '1024', '-O', 'bigalloc,meta_bg,^resize_inode', '-C', '8192'], ['-b', '4096', '-O', 'bigalloc,^flex_bg', '-C', '16384']]) {
    it(`bigalloc without s_overhead_clusters: the overhead is counted like the kernel (${args.join(' ')})`, async function () {
      if (noLoop) {
        console.log(`      loop mounts impossible here (${noLoop})`);
        this.skip();
      }
      const image = join(scratchDir('ext-bigalloc'), 'fs.img');
      await sh('truncate', ['-s', '300M', image]);
      await sh('mkfs.ext4', ['-q', '-F', ...args, image]);
      await sh('debugfs', ['-w', '-R', 'ssv overhead_clusters 0', image]);
      await guardImages([image], async () => {
        const raw = await RawFileSource.open(image);
        try {
          const fs = (await openExt(raw)) as ExtFilesystem;
          assert.equal(fs.volume.sb.s_overhead_clusters, 0);
          const { exact, reason: _r, ...figures } = await fs.statfs();
          assert.equal(exact, true);
          await withKernelMount(image, {}, async (m) => assert.deepEqual(figures, await kernelStatfs(m.dir)));
        } finally {
          await raw.close();
        }
      });
    });
  }
});
