/**
 * The ext driver's API edges: checksum primitives against their published
 * check values, errors for wrong use and non-ext input, lookup of "." and
 * "..", and refresh() picking up changes a guest made.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RawFileSource } from '@guestlens/qcow2-js';
import { ExtError, ExtFilesystem, ExtUnsupportedError, isExtSuperblock, openExt } from '../../../src/filesystems/ext/index.ts';
import { crc16, crc32c } from '../../../src/filesystems/ext/checksum.ts';
import { htreeLookup, usesHtree } from '../../../src/filesystems/ext/htree.ts';
import { readInode } from '../../../src/filesystems/ext/inode.ts';
import { mapBlocks } from '../../../src/filesystems/ext/mapping.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { sh } from '../../../../../test/support/run.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { kernelStatfs, loopMountUnavailable, mountImage, unmountAll, withKernelMount } from '../../../../../test/support/kernel.ts';
import { MemorySource } from './fuzzer.ts';

async function smallImage(args: string[] = [], mkfs = 'mkfs.ext4'): Promise<string> {
  const dir = scratchDir('ext-api');
  const src = join(dir, 'src');
  await mkdir(join(src, 'd'), { recursive: true });
  await writeFile(join(src, 'd', 'file'), 'content\n');
  await sh('ln', ['-s', 'd/file', join(src, 'link')]);
  const image = join(dir, 'fs.img');
  await sh('truncate', ['-s', '16M', image]);
  await sh(mkfs, ['-q', '-F', ...args, '-d', src, image]);
  return image;
}

describe('ext driver: API', function () {
  this.timeout(120_000);
  afterEach(unmountAll);

  it('crc32c and crc16 match their check values', () => {
    const check = Buffer.from('123456789');
    assert.equal((crc32c(0xffffffff, check) ^ 0xffffffff) >>> 0, 0xe3069283);
    assert.equal(crc16(0, check), 0xbb3d);
    // Chaining pieces equals one pass, as the kernel relies on.
    assert.equal(crc32c(crc32c(0xffffffff, check.subarray(0, 4)), check.subarray(4)), crc32c(0xffffffff, check));
  });

  it('recognises an ext superblock and refuses other data with a typed error', async () => {
    const image = await smallImage();
    const data = await readFile(image);
    assert.equal(isExtSuperblock(data.subarray(1024, 2048)), true);
    assert.equal(isExtSuperblock(Buffer.alloc(1024)), false);
    await assert.rejects(() => openExt(new MemorySource(Buffer.alloc(1 << 20), 'zeros.img')), (e: unknown) => e instanceof ExtError && /bad magic/.test(e.message) && /zeros\.img/.test(e.message));
    await assert.rejects(() => openExt(new MemorySource(Buffer.alloc(100), 'tiny.img')), (e: unknown) => e instanceof ExtError && e.code === 'EINVAL');
    // A truncated image: the superblock claims more blocks than the device has.
    await assert.rejects(() => openExt(new MemorySource(data.subarray(0, 4 << 20), 'truncated.img')), (e: unknown) => e instanceof ExtError && /larger than the device/.test(e.message));
  });

  it('refuses an unknown incompatible feature by name', async () => {
    const image = await smallImage([], 'mkfs.ext2');
    const data = await readFile(image);
    data.writeUInt32LE(data.readUInt32LE(1024 + 0x60) | 0x1, 1024 + 0x60);
    await assert.rejects(() => openExt(new MemorySource(data, 'compressed.img')), (e: unknown) => e instanceof ExtUnsupportedError && /compression/.test(e.message));
  });

  it('answers wrong use with errno-like codes and resolves "." and ".."', async () => {
    const image = await smallImage();
    await guardImages([image], async () => {
      const src = await RawFileSource.open(image);
      try {
        const fs = await openExt(src, { limits: { maxReadBytes: 4 } });
        const d = await fs.lookup(fs.rootIno, 'd');
        assert.ok(d);
        const file = await fs.lookup(d, 'file');
        const link = await fs.lookup(fs.rootIno, 'link');
        assert.ok(file && link);
        assert.equal(await fs.lookup(fs.rootIno, '..'), fs.rootIno);
        assert.equal(await fs.lookup(fs.rootIno, '.'), fs.rootIno);
        assert.equal(await fs.lookup(d, '..'), fs.rootIno);
        assert.equal(await fs.lookup(d, 'missing'), undefined);
        assert.equal(await fs.readlink(link), 'd/file');
        assert.equal((await fs.read(file, 0, 4)).toString(), 'cont');
        assert.equal((await fs.read(file, 100, 4)).length, 0);
        const code = (c: string) => (e: unknown) => e instanceof ExtError && e.code === c;
        await assert.rejects(() => fs.read(file, 0, 8), code('EFBIG'));
        await assert.rejects(() => fs.read(d, 0, 1), code('EISDIR'));
        await assert.rejects(() => fs.read(link, 0, 1), code('EINVAL'));
        await assert.rejects(() => fs.readdir(file), code('ENOTDIR'));
        await assert.rejects(() => fs.readlink(file), code('EINVAL'));
        await assert.rejects(() => fs.getattr(0), code('EINVAL'));
        await assert.rejects(() => fs.getattr(10_000_000), code('EINVAL'));
        await assert.rejects(() => fs.read(file, -1, 1), code('EINVAL'));
        const names = (await fs.readdir(fs.rootIno)).map((e) => e.name).sort();
        assert.deepEqual(names, ['d', 'link', 'lost+found']);
      } finally {
        await src.close();
      }
    });
  });

  it('refresh() sees what a guest wrote since opening', async function () {
    const noLoop = await loopMountUnavailable();
    if (noLoop) {
      console.log(`      cannot write through the kernel here (${noLoop})`);
      this.skip();
    }
    const image = await smallImage();
    const src = await RawFileSource.open(image);
    try {
      const fs = (await openExt(src)) as ExtFilesystem;
      const before = await fs.statfs();
      assert.equal(await fs.lookup(fs.rootIno, 'added'), undefined);
      const m = await mountImage(image, { readWrite: true });
      try {
        await writeFile(join(m.dir, 'added'), Buffer.alloc(2 << 20, 1));
      } finally {
        await m.unmount();
      }
      await fs.refresh();
      const after = await fs.statfs();
      assert.ok(after.bfree < before.bfree);
      const added = await fs.lookup(fs.rootIno, 'added');
      assert.ok(added);
      assert.equal((await fs.getattr(added)).size, 2 << 20);
      await withKernelMount(image, {}, async (k) => {
        const { exact: _e, reason: _r, ...figures } = after;
        assert.deepEqual(figures, await kernelStatfs(k.dir));
      });
    } finally {
      await src.close();
    }
  });

  for (const hashAlg of ['half_md4', 'tea', 'legacy']) {
    for (const [flags, signedness] of [[1, 'signed'], [2, 'unsigned']] as const) {
      // One directory big enough for a two-level index (1 KiB blocks hold ~120 index entries).
      const count = hashAlg === 'half_md4' && signedness === 'signed' ? 6000 : 400;
      it(`looks names up through the htree index (${hashAlg}, ${signedness} chars, ${count} names), equal to a full listing`, async function () {
        const noLoop = await loopMountUnavailable();
        if (noLoop) {
          console.log(`      cannot make kernel-hashed directories here (${noLoop})`);
          this.skip();
        }
        const image = join(scratchDir('ext-htree'), 'fs.img');
        await sh('truncate', ['-s', '32M', image]);
        await sh('mkfs.ext4', ['-q', '-F', '-b', '1024', image]);
        // New hashed directories take the superblock's default hash and signedness.
        await sh('debugfs', ['-w', '-R', `ssv def_hash_version ${hashAlg}`, image]);
        await sh('debugfs', ['-w', '-R', `ssv flags ${flags}`, image]);
        const m = await mountImage(image, { readWrite: true });
        try {
          await mkdir(join(m.dir, 'h'));
          for (let i = 0; i < count; i++) await writeFile(join(m.dir, 'h', `${i % 3 ? 'ÿüñ' : 'plain'}-${i}-${'x'.repeat(i % 40)}`), '');
        } finally {
          await m.unmount();
        }
        const src = await RawFileSource.open(image);
        try {
          const lister = await ExtFilesystem.open(src);
          const dirIno = (await lister.lookup(lister.rootIno, 'h'))!;
          const listed = await lister.readdir(dirIno);
          assert.equal(listed.length, count);
          const fs = await ExtFilesystem.open(src);
          const inode = await readInode(fs.volume, dirIno);
          assert.ok(usesHtree(fs.volume, inode), 'the directory is not hashed');
          const [rootRun] = await mapBlocks(fs.volume, inode, 0, 1);
          const dxRoot = await fs.volume.cache.read(rootRun.pblk!);
          assert.equal(dxRoot.readUInt8(28), { legacy: 0, half_md4: 1, tea: 2 }[hashAlg], 'dx_root hash_version');
          if (count > 1000) assert.equal(dxRoot.readUInt8(30), 1, 'expected a two-level index');
          for (const e of listed) {
            const r = await htreeLookup(fs.volume, inode, e.rawName);
            assert.notEqual(r, 'fallback');
            assert.deepEqual(r, { found: true, ino: e.ino }, `htree lookup of ${e.name} (${e.rawName.toString("hex")})`);
            assert.equal(await fs.lookup(dirIno, e.name), e.ino);
          }
          for (const missing of ['plain-1-', 'nope', 'ÿüñ-99999-', 'x'.repeat(255)]) {
            assert.deepEqual(await htreeLookup(fs.volume, inode, Buffer.from(missing)), { found: false });
            assert.equal(await fs.lookup(dirIno, missing), undefined);
          }
        } finally {
          await src.close();
        }
      });
    }
  }
});
