/**
 * Mount-time state the kernel acts on before it shows a filesystem: a log
 * that needs recovery (made by shutting the filesystem down after writes,
 * and by copying the image while it is mounted) is detected and statfs says
 * it is not the kernel's figure, and why; once the kernel has replayed the
 * log (on a copy), the image reads clean and equal to the kernel's mount.
 * Superblock counters the kernel does not believe (free blocks beyond the
 * filesystem) are recomputed from the AG headers, as mount does.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RawFileSource } from '@guestlens/qcow2-js';
import { XfsFilesystem } from '../../../src/filesystems/xfs/index.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { sh } from '../../../../../test/support/run.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { copySparse, kernelStatfs, loopMountUnavailable, mountImage, unmountAll, walkDriver, walkMounted, withKernelMount } from '../../../../../test/support/kernel.ts';
import { mkfsXfs, pseudoRandom } from './xfsFixtures.ts';

async function withDriver<T>(image: string, fn: (fs: XfsFilesystem) => Promise<T>): Promise<T> {
  const src = await RawFileSource.open(image);
  try {
    return await fn(await XfsFilesystem.open(src));
  } finally {
    await src.close();
  }
}

/** Write a few hundred files and directories, some synced, then delete some. */
async function busy(dir: string): Promise<void> {
  await mkdir(join(dir, 'a'));
  for (let i = 0; i < 300; i++) await writeFile(join(dir, 'a', `f${i}`), pseudoRandom(i * 17, i));
  await sh('sync', ['-f', join(dir, 'a')]);
  await mkdir(join(dir, 'b'));
  for (let i = 0; i < 50; i++) await writeFile(join(dir, 'b', `g${i}`), pseudoRandom(5000, i));
  await sh('rm', ['-rf', join(dir, 'a', 'f1'), join(dir, 'a', 'f2'), join(dir, 'a', 'f3')]);
}

describe('xfs driver: the log and the counters mount works from', function () {
  this.timeout(300_000);
  let noLoop: string | undefined;
  before(async () => {
    noLoop = await loopMountUnavailable();
  });
  beforeEach(function () {
    if (noLoop) {
      console.log(`      loop mounts impossible here (${noLoop}): no dirty log can be made`);
      this.skip();
    }
  });
  afterEach(unmountAll);

  for (const how of ['shut down after writes (xfs_io -x -c shutdown)', 'copied while mounted read-write'] as const) {
    it(`a log that needs recovery is detected: ${how}; after the kernel replays it the image reads exactly as mounted`, async () => {
      const dir = scratchDir('xfs-dirty');
      const image = join(dir, 'fs.img');
      await mkfsXfs(image, '1G', []);
      const m = await mountImage(image, { readWrite: true });
      const dirty = join(dir, 'dirty.img');
      try {
        await busy(m.dir);
        if (how.startsWith('shut')) {
          await sh('xfs_io', ['-x', '-c', 'shutdown -f', m.dir]);
        } else {
          await sh('sync', ['-f', m.dir]);
          await copySparse(image, dirty);
        }
      } finally {
        await m.unmount();
      }
      const target = how.startsWith('shut') ? image : dirty;
      await guardImages([target], async () => {
        await withDriver(target, async (fs) => {
          assert.equal(fs.mountState.log?.clean, false);
          const st = await fs.statfs();
          assert.equal(st.exact, false);
          assert.match(st.reason!, /log needs recovery/);
          // Still readable as it is on disk.
          await walkDriver(fs);
        });
      });
      // The kernel replays the log (on a private copy); what it leaves is clean and reads as mounted.
      const replayed = join(dir, 'replayed.img');
      await copySparse(target, replayed);
      const kernel = await withKernelMount(replayed, { readWrite: true }, async (mnt) => ({ tree: await walkMounted(mnt.dir) }));
      await guardImages([replayed], async () => {
        await withDriver(replayed, async (fs) => {
          assert.equal(fs.mountState.log?.clean, true);
          const st = await fs.statfs();
          assert.equal(st.exact, true, st.reason);
          assert.deepEqual(await walkDriver(fs), kernel.tree);
          await withKernelMount(replayed, {}, async (mnt) => {
            const { exact: _e, reason: _r, ...figures } = st;
            assert.deepEqual(figures, await kernelStatfs(mnt.dir));
          });
        });
      });
    });
  }

  it('superblock counters the kernel does not believe are recomputed from the AG headers, as mount does', async () => {
    const dir = scratchDir('xfs-sick');
    const image = join(dir, 'fs.img');
    await mkfsXfs(image, '1G', []);
    const m = await mountImage(image, { readWrite: true });
    try {
      await busy(m.dir);
    } finally {
      await m.unmount();
    }
    const dblocks = Number((await sh('xfs_db', ['-r', '-c', 'sb 0', '-c', 'print dblocks', image])).split('=')[1]);
    await sh('xfs_db', ['-x', '-c', 'sb 0', '-c', `write fdblocks ${dblocks + 1000}`, image]);
    await guardImages([image], async () => {
      await withDriver(image, async (fs) => {
        const st = await fs.statfs();
        assert.equal(st.exact, true, st.reason);
        await withKernelMount(image, {}, async (mnt) => {
          const { exact: _e, reason: _r, ...figures } = st;
          assert.deepEqual(figures, await kernelStatfs(mnt.dir));
        });
      });
    });
  });
});
