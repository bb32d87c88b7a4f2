/**
 * The one limit on a directory listing, in every driver that has
 * directories of unbounded size (ext, XFS, btrfs, NTFS): past it, readdir
 * fails with EFBIG naming guestlens's limit, never calling the filesystem
 * corrupt (a guest may well make a directory that big). The limit is
 * lowered to 40 here; each filesystem is made by its own mkfs with a
 * directory of 400 files.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Filesystem } from '../../src/filesystems/filesystem.ts';
import { ExtFilesystem } from '../../src/filesystems/ext/index.ts';
import { XfsFilesystem } from '../../src/filesystems/xfs/index.ts';
import { BtrfsFilesystem } from '../../src/filesystems/btrfs/btrfsFilesystem.ts';
import { NtfsFilesystem } from '../../src/filesystems/ntfs/ntfsFilesystem.ts';
import { FilesystemError } from '../../src/filesystems/errors.ts';
import { MAX_DIRECTORY_ENTRIES } from '../../src/filesystems/directoryLimit.ts';
import { sh } from '../../../../test/support/run.ts';
import { scratchDir } from '../../../../test/support/scratch.ts';
import { mkntfs, ntfs3gUnavailable, withNtfs3g } from '../../../../test/support/ntfs3g.ts';
import { withRawSource } from '../../../../test/support/rawSource.ts';
import { guardImages } from '../../../../test/support/imageGuard.ts';

const FILES = 400; // more than one XFS directory block (a single block or an inline directory is bounded by its size)
const limits = { maxDirectoryEntries: 40 };

function tree(): string {
  const root = join(scratchDir('directory-limit-tree'), 'root');
  mkdirSync(join(root, 'big'), { recursive: true });
  for (let i = 0; i < FILES; i++) writeFileSync(join(root, 'big', `file-${i}`), '');
  return root;
}

async function assertRefusedByLimit(fs: Filesystem, path = '/big'): Promise<void> {
  const big = await fs.lookup(fs.rootIno, path.slice(1));
  assert.ok(big !== undefined, `no ${path}`);
  await assert.rejects(fs.readdir(big), (err: unknown) => {
    assert.ok(err instanceof FilesystemError, String(err));
    assert.equal(err.code, 'EFBIG');
    assert.match(err.message, /has more than 40 entries, over guestlens's limit for one directory listing/);
    assert.doesNotMatch(err.message, /corrupt/);
    return true;
  });
  assert.ok((await fs.readdir(fs.rootIno)).some((e) => e.name === 'big'), 'a directory under the limit lists');
}


describe('directory listing limit (every driver)', function () {
  this.timeout(120_000);

  it('is the same two million everywhere by default', () => {
    assert.equal(MAX_DIRECTORY_ENTRIES, 2_000_000);
  });

  it('ext4 (mke2fs -d)', async () => {
    const image = join(scratchDir('directory-limit'), 'ext4.img');
    await sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree(), image, '8M']);
    await guardImages([image], () => withRawSource(image, async (src) => assertRefusedByLimit(await ExtFilesystem.open(src, { limits }))));
  });

  it('XFS (mkfs.xfs, files made through the kernel)', async function () {
    const image = join(scratchDir('directory-limit'), 'xfs.img');
    await sh('truncate', ['-s', '300M', image]);
    await sh('mkfs.xfs', ['-q', '-f', image]);
    const mnt = scratchDir('directory-limit-mnt');
    await sh('mount', ['-o', 'loop', image, mnt]);
    try {
      await sh('cp', ['-r', join(tree(), 'big'), join(mnt, 'big')]);
    } finally {
      await sh('umount', [mnt]);
    }
    await guardImages([image], () => withRawSource(image, async (src) => assertRefusedByLimit(await XfsFilesystem.open(src, { limits }))));
  });

  it('btrfs (mkfs.btrfs --rootdir)', async () => {
    const image = join(scratchDir('directory-limit'), 'btrfs.img');
    await sh('truncate', ['-s', '128M', image]);
    await sh('mkfs.btrfs', ['-q', '-f', '--rootdir', tree(), image]);
    await guardImages([image], () => withRawSource(image, async (src) => assertRefusedByLimit(await BtrfsFilesystem.open([src], { limits }))));
  });

  it('NTFS (mkntfs, files made through ntfs-3g)', async function () {
    const why = await ntfs3gUnavailable();
    if (why) {
      console.log(`      skipped: ${why}`);
      return this.skip();
    }
    const image = join(scratchDir('directory-limit'), 'ntfs.img');
    await mkntfs(image, { sizeMiB: 16 });
    await withNtfs3g(image, { readWrite: true }, async (dir) => sh('cp', ['-r', join(tree(), 'big'), join(dir, 'big')]));
    await guardImages([image], () => withRawSource(image, async (src) => assertRefusedByLimit(await NtfsFilesystem.open(src, { limits }))));
  });
});
