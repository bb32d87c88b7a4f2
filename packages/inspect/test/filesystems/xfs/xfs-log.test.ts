/**
 * Mount-time state the kernel acts on before it shows a filesystem: a log
 * that needs recovery (made by shutting the filesystem down after writes,
 * and by copying the image while it is mounted) is replayed in memory, and
 * statfs and the whole tree are then what the kernel's mount shows after its
 * own replay (of a private copy); without replay the result says it is not
 * the kernel's figure, and why.
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

/**
 * Let the deletions finish: XFS frees deleted inodes in the background
 * (inodegc); a shutdown in the middle leaves unfinished intents and unlinked
 * inodes, which mount finishes and the driver reports as not modelled.
 */
async function settle(dir: string): Promise<void> {
  await sh('sync', ['-f', dir]);
  await new Promise((r) => setTimeout(r, 1000));
  await sh('sync', ['-f', dir]);
}

/** Write a few hundred files and directories, some synced, delete some, then write more. */
async function busy(dir: string): Promise<void> {
  await mkdir(join(dir, 'a'));
  for (let i = 0; i < 300; i++) await writeFile(join(dir, 'a', `f${i}`), pseudoRandom(i * 17, i));
  await sh('sync', ['-f', join(dir, 'a')]);
  await sh('rm', ['-rf', join(dir, 'a', 'f1'), join(dir, 'a', 'f2'), join(dir, 'a', 'f3')]);
  await settle(dir);
  await mkdir(join(dir, 'b'));
  for (let i = 0; i < 50; i++) await writeFile(join(dir, 'b', `g${i}`), pseudoRandom(5000, i));
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
    it(`a log that needs recovery (${how}) is replayed in memory: statfs and the tree are those of the kernel's mount, which replays it too`, async () => {
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
          assert.ok(fs.mountState.replay && fs.mountState.replay.transactions > 0, 'nothing replayed');
          const st = await fs.statfs();
          assert.equal(st.exact, true, st.reason);
          const ours = await walkDriver(fs, { times: true, birthTime: true });
          // The kernel replays the log on a private copy before it shows the filesystem.
          await withKernelMount(target, { copy: true }, async (mnt) => {
            const { exact: _e, reason: _r, ...figures } = st;
            assert.deepEqual(figures, await kernelStatfs(mnt.dir));
            assert.deepEqual(ours, await walkMounted(mnt.dir, { times: true, birthTime: true }));
          });
        });
        // Without replay: the blocks as they are on disk, said to be inexact.
        const src = await RawFileSource.open(target);
        try {
          const raw = await XfsFilesystem.open(src, { replayLog: false });
          const st = await raw.statfs();
          assert.equal(st.exact, false);
          assert.match(st.reason!, /log needs recovery.*replay was turned off/);
          await walkDriver(raw);
        } finally {
          await src.close();
        }
      });
    });
  }

  const heavy: { name: string; mkfs: string[]; size: string; small?: boolean; wraps?: boolean; work: (dir: string) => Promise<void> }[] = [
    {
      name: 'a node-form directory, a bmap btree, symlinks and attributes made since the last sync, big files deleted',
      mkfs: [],
      size: '1G',
      work: async (dir) => {
        await writeFile(join(dir, 'doomed'), pseudoRandom(8 << 20, 1));
        await sh('sync', ['-f', dir]);
        await mkdir(join(dir, 'big'));
        for (let i = 0; i < 3000; i++) await writeFile(join(dir, 'big', `entry-${i}-${'x'.repeat(i % 40)}`), i % 11 ? '' : pseudoRandom(i, i));
        const cmds: string[] = [];
        for (let i = 0; i < 400; i++) cmds.push('-c', `pwrite -q ${i * 8192} 4096`);
        await sh('xfs_io', ['-f', ...cmds, join(dir, 'holes')]);
        await sh('rm', ['-f', join(dir, 'doomed')]);
        await sh('xfs_io', ['-c', 'truncate 100000', join(dir, 'holes')]);
        await settle(dir);
        await sh('ln', ['-s', 'l'.repeat(800), join(dir, 'long-link')]);
        await writeFile(join(dir, 'attrs'), 'a');
        await sh('setfattr', ['-n', 'user.long', '-v', 'v'.repeat(600), join(dir, 'attrs')]);
      },
    },
    {
      name: 'reflink copies and rmapbt (reference-count and reverse-mapping updates)',
      mkfs: ['-m', 'rmapbt=1,reflink=1'],
      size: '1G',
      work: async (dir) => {
        await writeFile(join(dir, 'orig'), pseudoRandom(1 << 20, 3));
        await sh('sync', ['-f', dir]);
        for (let i = 0; i < 20; i++) await sh('cp', ['--reflink=always', join(dir, 'orig'), join(dir, `copy-${i}`)]);
        await sh('rm', ['-f', join(dir, 'copy-7')]);
        await settle(dir);
        await sh('xfs_io', ['-c', 'pwrite -q -S 5 4096 8192', join(dir, 'copy-3')]);
      },
    },
    {
      name: '4 KiB sectors (and log sectors), 2 KiB inodes',
      mkfs: ['-s', 'size=4096', '-i', 'size=2048'],
      size: '1G',
      work: async (dir) => {
        await mkdir(join(dir, 'd'));
        for (let i = 0; i < 700; i++) await writeFile(join(dir, 'd', `f${i}`), pseudoRandom(i * 13, i));
        await sh('setfattr', ['-n', 'user.x', '-v', 'y'.repeat(300), join(dir, 'd', 'f1')]);
      },
    },
    {
      name: '1 KiB blocks, 8 KiB directory blocks, nrext64',
      mkfs: ['-b', 'size=1024', '-n', 'size=8192', '-i', 'nrext64=1'],
      size: '1G',
      work: async (dir) => {
        await mkdir(join(dir, 'd'));
        for (let i = 0; i < 1500; i++) await writeFile(join(dir, 'd', `entry-${i}-${'k'.repeat(i % 20)}`), pseudoRandom(i * 7, i));
        const cmds: string[] = [];
        for (let i = 0; i < 300; i++) cmds.push('-c', `pwrite -q ${i * 2048} 1024`);
        await sh('xfs_io', ['-f', ...cmds, join(dir, 'holes')]);
      },
    },
    {
      name: 'a small log written around several times',
      mkfs: ['-l', 'size=1368b'],
      size: '96M',
      small: true,
      wraps: true,
      work: async (dir) => {
        for (let round = 0; round < 8; round++) {
          await mkdir(join(dir, `r${round}`));
          for (let i = 0; i < 1500; i++) await writeFile(join(dir, `r${round}`, `f${i}`), `${i}\n`);
          await sh('sync', ['-f', dir]);
          if (round < 7) await sh('rm', ['-rf', join(dir, `r${round}`)]);
          await settle(dir);
        }
        await writeFile(join(dir, 'last'), 'after the last sync');
      },
    },
  ];
  for (const c of heavy) {
    it(`replay matches the kernel's: ${c.name}`, async () => {
      const dir = scratchDir('xfs-dirty-heavy');
      const image = join(dir, 'fs.img');
      await mkfsXfs(image, c.size, c.mkfs, c.small);
      const m = await mountImage(image, { readWrite: true });
      try {
        await c.work(m.dir);
        await sh('xfs_io', ['-x', '-c', 'shutdown -f', m.dir]);
      } finally {
        await m.unmount();
      }
      await guardImages([image], async () => {
        await withDriver(image, async (fs) => {
          assert.equal(fs.mountState.log?.clean, false);
          if (c.wraps) assert.ok(fs.mountState.log!.cycle! >= 2, `the log did not wrap (cycle ${fs.mountState.log!.cycle})`);
          const st = await fs.statfs();
          assert.equal(st.exact, true, st.reason);
          const ours = await walkDriver(fs, { times: true, birthTime: true });
          await withKernelMount(image, { copy: true }, async (mnt) => {
            const { exact: _e, reason: _r, ...figures } = st;
            assert.deepEqual(figures, await kernelStatfs(mnt.dir));
            const kernel = await walkMounted(mnt.dir, { times: true, birthTime: true });
            assert.equal(ours.length, kernel.length);
            for (let i = 0; i < kernel.length; i++) assert.deepEqual(ours[i], kernel[i]);
          });
        });
      });
    });
  }

  it('a file deleted while open (an unlinked inode mount frees) makes the replayed statfs inexact, with the reason', async () => {
    const dir = scratchDir('xfs-unlinked');
    const image = join(dir, 'fs.img');
    await mkfsXfs(image, '1G', []);
    const m = await mountImage(image, { readWrite: true });
    const { open: openFile } = await import('node:fs/promises');
    try {
      await writeFile(join(m.dir, 'open-file'), pseudoRandom(1 << 20, 4));
      const fh = await openFile(join(m.dir, 'open-file'), 'r');
      try {
        await sh('rm', [join(m.dir, 'open-file')]);
        await sh('sync', ['-f', m.dir]);
        await sh('xfs_io', ['-x', '-c', 'shutdown -f', m.dir]);
      } finally {
        await fh.close();
      }
    } finally {
      await m.unmount();
    }
    await withDriver(image, async (fs) => {
      const st = await fs.statfs();
      assert.equal(st.exact, false);
      assert.match(st.reason!, /unlinked-inode list/);
    });
  });

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
