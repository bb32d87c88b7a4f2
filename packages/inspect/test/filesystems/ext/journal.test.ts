/**
 * Journal recovery against the kernel. A filesystem is mounted read-write on
 * a loop device, changed, and its transactions committed with fsync (so the
 * journal holds metadata that is not yet at its home location); the image is
 * copied while still mounted. The copy has RECOVER set. Our view of the copy
 * (journal replayed in memory) must equal the kernel's view of another copy
 * after the kernel itself replayed it at mount time, and must differ from the
 * unreplayed device, or the test would prove nothing.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile, rm, appendFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { RawFileSource } from '@guestlens/qcow2-js';
import { ExtFilesystem } from '../../../src/filesystems/ext/index.ts';
import { INCOMPAT } from '../../../src/filesystems/ext/superblock.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { sh } from '../../../../../test/support/run.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { copySparse, kernelStatfs, loopMountUnavailable, mountImage, unmountAll, walkDriver, walkMounted, withKernelMount } from '../../../../../test/support/kernel.ts';
import { pseudoRandom } from './fixtures.ts';

interface Scenario {
  name: string;
  mkfs: string;
  args: string[];
  /** Expect at least one revoke record in the replayed log. */
  expectRevoke?: boolean;
}

const SCENARIOS: Scenario[] = [
  { name: 'ext4, 4 KiB blocks, 64-bit tags with checksum v3', mkfs: 'mkfs.ext4', args: ['-b', '4096'], expectRevoke: true },
  { name: 'ext4, 1 KiB blocks, 64-bit tags with checksum v3', mkfs: 'mkfs.ext4', args: ['-b', '1024'], expectRevoke: true },
  { name: 'ext4 without metadata_csum, 32-bit tags, no checksums', mkfs: 'mkfs.ext4', args: ['-b', '1024', '-O', '^64bit,^metadata_csum'], expectRevoke: true },
  { name: 'ext4 64bit without metadata_csum: 64-bit tags, no checksums', mkfs: 'mkfs.ext4', args: ['-O', '64bit,^metadata_csum'] },
  { name: 'ext3, 1 KiB blocks (indirect blocks, revoke of freed directory blocks)', mkfs: 'mkfs.ext3', args: ['-b', '1024'], expectRevoke: true },
  { name: 'ext4 bigalloc', mkfs: 'mkfs.ext4', args: ['-O', 'bigalloc', '-C', '16384'] },
];

/** fsync one path: commits the running jbd2 transaction without writing metadata home. */
async function fsyncPath(path: string): Promise<void> {
  await sh('sync', [path]);
}

/** Mount rw, make two committed transactions (the second frees journaled metadata: revokes), copy while mounted. */
async function makeNeedsRecovery(scenario: Scenario): Promise<string> {
  const dir = scratchDir('ext-journal');
  const image = join(dir, 'live.img');
  await sh('truncate', ['-s', '64M', image]);
  await sh(scenario.mkfs, ['-q', '-F', ...scenario.args, image]);
  const m = await mountImage(image, { readWrite: true, options: ['commit=300'] });
  const copy = join(dir, 'needs-recovery.img');
  try {
    await mkdir(join(m.dir, 'doomed'));
    for (let i = 0; i < 300; i++) await writeFile(join(m.dir, 'doomed', `file-with-a-rather-long-name-${i}`), String(i));
    await writeFile(join(m.dir, 'big'), pseudoRandom(3_000_000, 1));
    await mkdir(join(m.dir, 'kept', 'sub'), { recursive: true });
    await writeFile(join(m.dir, 'kept', 'sub', 'a'), 'a\n');
    await fsyncPath(join(m.dir, 'big'));
    // Second transaction: free the journaled directory blocks, rewrite metadata nearby.
    await rm(join(m.dir, 'doomed'), { recursive: true });
    await mkdir(join(m.dir, 'fresh'));
    for (let i = 0; i < 50; i++) await writeFile(join(m.dir, 'fresh', `n${i}`), pseudoRandom(i * 100, i));
    await appendFile(join(m.dir, 'kept', 'sub', 'a'), 'more\n');
    await writeFile(join(m.dir, 'mid'), pseudoRandom(100_000, 2));
    await fsyncPath(join(m.dir, 'mid'));
    await copySparse(image, copy);
  } finally {
    await m.unmount();
  }
  return copy;
}

describe('ext driver: journal replay equals the kernel\'s recovery', function () {
  this.timeout(300_000);
  let noLoop: string | undefined;
  before(async function () {
    noLoop = await loopMountUnavailable();
  });
  afterEach(unmountAll);

  for (const scenario of SCENARIOS) {
    it(scenario.name, async function () {
      if (noLoop) {
        console.log(`      cannot make a journal that needs recovery without a loop mount (${noLoop})`);
        this.skip();
      }
      const copy = await makeNeedsRecovery(scenario);
      await guardImages([copy], async () => {
        const src = await RawFileSource.open(copy);
        try {
          const raw = await ExtFilesystem.open(src, { replayJournal: false });
          assert.ok(raw.volume.sb.s_feature_incompat & INCOMPAT.RECOVER, 'the copy should need recovery');
          assert.equal((await raw.statfs()).exact, false);

          const fs = await ExtFilesystem.open(src);
          assert.equal(fs.mountState.replayed, true);
          assert.ok(fs.mountState.transactions >= 1, 'no committed transaction found in the journal');
          assert.ok(fs.mountState.replayedBlocks > 0);
          if (scenario.expectRevoke) assert.ok(fs.mountState.revokeRecords > 0, 'expected revoke records in the log');
          const ours = await fs.statfs();
          assert.equal(ours.exact, true, ours.reason);
          const ourTree = await walkDriver(fs);
          const rawTree = await walkDriver(raw).catch(() => undefined);
          const rawStat = await raw.statfs();
          assert.ok(
            rawTree === undefined || JSON.stringify(rawTree) !== JSON.stringify(ourTree) || rawStat.bfree !== ours.bfree,
            'the unreplayed device already looks like the recovered one: the test would not exercise replay',
          );

          await withKernelMount(copy, { copy: true }, async (m) => {
            const { exact: _e, reason: _r, ...figures } = ours;
            assert.deepEqual(figures, await kernelStatfs(m.dir));
            const kernelTree = await walkMounted(m.dir);
            assert.equal(ourTree.length, kernelTree.length);
            for (let i = 0; i < kernelTree.length; i++) assert.deepEqual(ourTree[i], kernelTree[i]);
          });
        } finally {
          await src.close();
        }
      });
    });
  }

  it('fast commits pending in the journal make statfs inexact, with the reason', async function () {
    if (noLoop) {
      console.log(`      cannot make fast commits without a loop mount (${noLoop})`);
      this.skip();
    }
    const dir = scratchDir('ext-fc');
    const image = join(dir, 'live.img');
    await sh('truncate', ['-s', '64M', image]);
    await sh('mkfs.ext4', ['-q', '-F', '-O', 'fast_commit', image]);
    const m = await mountImage(image, { readWrite: true });
    const copy = join(dir, 'fc.img');
    try {
      await mkdir(join(m.dir, 'd'));
      await writeFile(join(m.dir, 'd', 'f'), 'one\n');
      await sh('sync', ['-f', m.dir]);
      await writeFile(join(m.dir, 'big'), pseudoRandom(300_000, 3));
      await fsyncPath(join(m.dir, 'big'));
      await appendFile(join(m.dir, 'd', 'f'), 'two\n');
      await fsyncPath(join(m.dir, 'd', 'f'));
      await copySparse(image, copy);
    } finally {
      await m.unmount();
    }
    await guardImages([copy], async () => {
      const src = await RawFileSource.open(copy);
      try {
        const fs = await ExtFilesystem.open(src);
        const st = await fs.statfs();
        assert.equal(st.exact, false);
        assert.match(st.reason ?? '', /fast commit/);
      } finally {
        await src.close();
      }
    });
  });

  for (const variant of [{ args: [] as string[], modelled: true }, { args: ['-O', 'bigalloc', '-C', '16384'], modelled: false }]) {
    it(`orphan inodes (deleted while open) ${variant.modelled ? 'are cleaned up as the kernel does at mount' : 'with bigalloc make statfs inexact'}`, async function () {
      if (noLoop) {
        console.log(`      cannot make orphan inodes without a loop mount (${noLoop})`);
        this.skip();
      }
      const dir = scratchDir('ext-orphan');
      const image = join(dir, 'live.img');
      await sh('truncate', ['-s', '64M', image]);
      await sh('mkfs.ext4', ['-q', '-F', '-O', '^orphan_file', ...variant.args, image]);
      const m = await mountImage(image, { readWrite: true });
      const copy = join(dir, 'orphans.img');
      try {
        const handles = [];
        for (let i = 0; i < 3; i++) {
          const victim = join(m.dir, `open-but-deleted-${i}`);
          await writeFile(victim, pseudoRandom(300_000 * (i + 1), 5 + i));
          handles.push(await open(victim, 'r'));
          await rm(victim);
        }
        try {
          await sh('sync', ['-f', m.dir]);
          await copySparse(image, copy);
        } finally {
          for (const h of handles) await h.close();
        }
      } finally {
        await m.unmount();
      }
      await guardImages([copy], async () => {
        const src = await RawFileSource.open(copy);
        try {
          const fs = await ExtFilesystem.open(src);
          assert.ok(fs.volume.sb.s_last_orphan !== 0, 'the copy should carry an orphan list');
          const { exact, reason, ...figures } = await fs.statfs();
          if (!variant.modelled) {
            assert.equal(exact, false);
            assert.match(reason ?? '', /orphan/);
            return;
          }
          assert.equal(fs.mountState.orphansFreedInodes, 3);
          assert.equal(exact, true, reason);
          await withKernelMount(copy, { copy: true }, async (k) => assert.deepEqual(figures, await kernelStatfs(k.dir)));
        } finally {
          await src.close();
        }
      });
    });
  }

  it('a clean filesystem is not replayed and its statfs is exact', async () => {
    const image = join(scratchDir('ext-clean'), 'clean.img');
    await sh('truncate', ['-s', '32M', image]);
    await sh('mkfs.ext4', ['-q', '-F', image]);
    const src = await RawFileSource.open(image);
    try {
      const fs = await ExtFilesystem.open(src);
      assert.equal(fs.mountState.replayed, false);
      assert.equal((await fs.statfs()).exact, true);
    } finally {
      await src.close();
    }
  });
});

