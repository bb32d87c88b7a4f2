/**
 * Hostile XFS images: mutation fuzzing over every structure the driver reads
 * (a few thousand cases here; `pnpm -s fuzz --target xfs` runs
 * longer), plus hand-made worst cases: a bmap btree pointing at itself, a
 * directory free region of length 0, an absurd symlink length, a torn CRC.
 * Every failure must be a typed filesystem error, no case may loop, memory
 * stays bounded.
 */
import assert from 'node:assert/strict';
import { XfsError, XfsFilesystem } from '../../../src/filesystems/xfs/index.ts';
import { xfsChecksum } from '../../../src/filesystems/xfs/checksum.ts';
import { readInode } from '../../../src/filesystems/xfs/inode.ts';
import { DINODE, SB } from '../../../src/filesystems/xfs/layout.ts';
import { loopMountUnavailable } from '../../../../../test/support/kernel.ts';
import { MemorySource, buildFuzzImages, isTyped, runFuzz, type FuzzImage } from './xfsFuzzer.ts';

const CASES = Number(process.env.GUESTLENS_FUZZ_CASES ?? process.env.XFS_FUZZ_CASES ?? 500);

describe('xfs driver: hostile images', function () {
  this.timeout(600_000);
  let images: FuzzImage[];
  before(async () => {
    const noLoop = await loopMountUnavailable();
    if (noLoop) console.log(`      no loop mounts here (${noLoop}): the corpus is filled by prototype files only (no btrees, attributes)`);
    images = await buildFuzzImages({ kernel: !noLoop });
  });

  it(`survives ${CASES} mutated images with typed errors only, no loop, bounded memory`, async () => {
    const heapBefore = process.memoryUsage().heapUsed;
    const { failures, stats } = await runFuzz(images, CASES, 0x5eed);
    const heapAfter = process.memoryUsage().heapUsed;
    console.log(`      ${stats.cases} cases, ${stats.opened} opened; errors by code ${JSON.stringify(stats.errorsByCode)}; regions ${JSON.stringify(stats.byKind)}`);
    if (failures.length) {
      const f = failures[0];
      assert.fail(`${failures.length} untyped failures; first: ${f.image} seed ${f.seed} mutating ${f.region}: ${(f.error as Error)?.stack ?? String(f.error)}`);
    }
    for (const kind of ['superblock', 'AGF', 'AGI', 'inode btree block', 'inode', 'directory block', 'log', ...(images.length > 3 ? ['log record'] : [])]) assert.ok(stats.byKind[kind] > 0, `no ${kind} mutated`);
    assert.ok(Object.keys(stats.errorsByCode).length >= 3, 'mutations produced too few kinds of error');
    assert.ok(heapAfter - heapBefore < 256 * 1024 * 1024, `heap grew by ${heapAfter - heapBefore} bytes`);
  });

  it('a checksum mismatch names the structure and is retryable only for live images', async () => {
    const data = Buffer.from(images.find((i) => i.v5)!.data);
    data[SB.sb_fdblocks + 7] ^= 0xff; // only the CRC notices
    for (const live of [false, true]) {
      await assert.rejects(
        () => XfsFilesystem.open(new MemorySource(data, 'torn.img'), { live }),
        (err: unknown) => err instanceof XfsError && err.code === 'EFSBADCRC' && /superblock/.test(err.message) && err.retryable === live && err.userFacing === true,
      );
    }
    // An inode with a torn CRC: EFSBADCRC for that inode, retryable when live.
    const pristine = images.find((i) => i.v5)!.data;
    const fs = await XfsFilesystem.open(new MemorySource(pristine, 'ok.img'));
    const ino = (await fs.lookup(fs.rootIno, 'medium'))!;
    const inode = await readInode(fs.volume, ino);
    const torn = Buffer.from(pristine);
    torn[inode.byteOffset + DINODE.di_size + 7] ^= 1;
    for (const live of [false, true]) {
      const hostile = await XfsFilesystem.open(new MemorySource(torn, 'torn-inode.img'), { live });
      await assert.rejects(() => hostile.getattr(ino), (err: unknown) => err instanceof XfsError && err.code === 'EFSBADCRC' && new RegExp(`inode ${ino}`).test(err.message) && err.retryable === live);
    }
  });

  it('absurd sizes, lengths and self-references are typed errors, not loops', async () => {
    const img = images.find((i) => i.v5)!;
    const fs = await XfsFilesystem.open(new MemorySource(img.data, 'ok.img'));
    const vol = fs.volume;
    const restamp = (buf: Buffer, at: number) => buf.writeUInt32LE(xfsChecksum(buf.subarray(at, at + vol.sb.sb_inodesize), DINODE.di_crc), at + DINODE.di_crc);
    // A symlink claiming 1 MiB.
    const link = (await fs.lookup(fs.rootIno, 'remote-link'))!;
    const li = await readInode(vol, link);
    const data = Buffer.from(img.data);
    data.writeBigUInt64BE(1n << 20n, li.byteOffset + DINODE.di_size);
    restamp(data, li.byteOffset);
    const hostile = await XfsFilesystem.open(new MemorySource(data, 'hostile.img', undefined, undefined, 10_000));
    await assert.rejects(() => hostile.readlink(link), (err: unknown) => err instanceof XfsError && /target length/.test(err.message));
    // A file whose size is beyond 2^53 bytes.
    const medium = (await fs.lookup(fs.rootIno, 'medium'))!;
    const mi = await readInode(vol, medium);
    data.writeBigUInt64BE(1n << 60n, mi.byteOffset + DINODE.di_size);
    restamp(data, mi.byteOffset);
    const hostile2 = await XfsFilesystem.open(new MemorySource(data, 'hostile.img', undefined, undefined, 10_000));
    await assert.rejects(() => hostile2.getattr(medium), (err: unknown) => isTyped(err) && /2\^53/.test((err as Error).message));
    // A read of a directory, a readdir of a file, an inode number outside the filesystem.
    await assert.rejects(() => fs.read(fs.rootIno, 0, 10), (err: unknown) => err instanceof XfsError && err.code === 'EISDIR');
    await assert.rejects(() => fs.readdir(medium), (err: unknown) => err instanceof XfsError && err.code === 'ENOTDIR');
    await assert.rejects(() => fs.getattr(2 ** 50), (err: unknown) => err instanceof XfsError && err.code === 'EINVAL');
    const used = new Set<number>();
    for await (const e of fs.inodes!()) used.add(e.ino);
    let free = fs.rootIno;
    while (used.has(free)) free++;
    await assert.rejects(() => fs.getattr(free), (err: unknown) => err instanceof XfsError && err.code === 'ENOENT' && /not in use/.test(err.message));
    await assert.rejects(() => fs.getxattr!(medium, 'user.nope'), (err: unknown) => err instanceof XfsError && err.code === 'ENODATA');
  });
});
