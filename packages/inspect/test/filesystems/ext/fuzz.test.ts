/**
 * Hostile ext images: mutation fuzzing over every structure the driver reads
 * (a few thousand cases here; `pnpm -s fuzz --target ext` runs longer),
 * plus hand-made worst cases: an extent index that points at itself, a
 * directory record of length 0, an absurd symlink length. Every failure must
 * be a typed ExtError, no case may loop, and memory stays bounded.
 */
import assert from 'node:assert/strict';
import { ExtError, ExtFilesystem } from '../../../src/filesystems/ext/index.ts';
import { inodeLocation, readInode } from '../../../src/filesystems/ext/inode.ts';
import { mapBlocks } from '../../../src/filesystems/ext/mapping.ts';
import { loopMountUnavailable } from '../../../../../test/support/kernel.ts';
import { MemorySource, buildFuzzImages, runFuzz, type FuzzImage } from './fuzzer.ts';

const CASES = Number(process.env.GUESTLENS_FUZZ_CASES ?? process.env.EXT_FUZZ_CASES ?? 750);

describe('ext driver: hostile images', function () {
  this.timeout(300_000);
  let images: FuzzImage[];
  before(async () => {
    const noLoop = await loopMountUnavailable();
    if (noLoop) console.log(`      no loop mounts here (${noLoop}): the corpus has no journal that needs recovery`);
    images = await buildFuzzImages({ withJournalReplay: !noLoop });
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
    // Each region kind was mutated and the corpus really exercised typed errors.
    for (const kind of ['superblock', 'group descriptors', 'inode', 'extent block', 'indirect block', 'directory block']) assert.ok(stats.byKind[kind] > 0, `no ${kind} mutated`);
    assert.ok(Object.keys(stats.errorsByCode).length >= 3, 'mutations produced too few kinds of error');
    assert.ok(heapAfter - heapBefore < 256 * 1024 * 1024, `heap grew by ${heapAfter - heapBefore} bytes`);
  });

  it('an extent index pointing at its own block is an error, not a loop', async () => {
    const img = images.find((i) => i.name === 'ext4-csum-1k')!;
    const data = Buffer.from(img.data);
    const fs = await ExtFilesystem.open(new MemorySource(data, 'self-loop.img'), { replayJournal: false });
    const ino = await fs.lookup(fs.rootIno, 'fragmented');
    assert.ok(ino);
    const inode = await readInode(fs.volume, ino);
    assert.ok(inode.i_block.readUInt16LE(6) > 0, 'fixture file has no index level');
    const child = inode.i_block.readUInt32LE(12 + 4);
    // Turn the child (a leaf) into an index node at depth 1 pointing at itself.
    const bs = fs.volume.blockSize;
    data.writeUInt16LE(1, child * bs + 6);
    data.writeUInt32LE(child, child * bs + 12 + 4);
    const source = new MemorySource(data, 'self-loop.img', undefined, undefined, 10_000);
    const hostile = await ExtFilesystem.open(source, { replayJournal: false });
    await assert.rejects(() => mapBlocks(hostile.volume, inode, 0, 4096), (err: unknown) => err instanceof ExtError);
    await assert.rejects(() => hostile.read(ino, 0, 4096), (err: unknown) => err instanceof ExtError && /extent/.test(err.message));
  });

  it('a directory record of length 0 and an absurd symlink length are typed errors', async () => {
    const img = images.find((i) => i.name === 'ext2-4k')!;
    const data = Buffer.from(img.data);
    const fs = await ExtFilesystem.open(new MemorySource(data, 'hostile.img'));
    const dirIno = (await fs.lookup(fs.rootIno, 'dir'))!;
    const dirInode = await readInode(fs.volume, dirIno);
    const [run] = await mapBlocks(fs.volume, dirInode, 0, 1);
    data.writeUInt16LE(0, run.pblk! * fs.volume.blockSize + 4);
    const linkIno = (await fs.lookup(fs.rootIno, 'slow-link'))!;
    const loc = inodeLocation(fs.volume, linkIno);
    data.writeUInt32LE(0x7fffffff, loc.block * fs.volume.blockSize + loc.offsetInBlock + 4);
    const hostile = await ExtFilesystem.open(new MemorySource(data, 'hostile.img', undefined, undefined, 10_000));
    await assert.rejects(() => hostile.readdir(dirIno), (err: unknown) => err instanceof ExtError && err.code === 'EFSCORRUPTED' && /rec_len 0/.test(err.message));
    await assert.rejects(() => hostile.readlink(linkIno), (err: unknown) => err instanceof ExtError && /symlink/.test(err.message));
  });

  it('a checksum mismatch names the structure and is retryable only for live images', async () => {
    const img = images.find((i) => i.name === 'ext4-csum-1k')!;
    const data = Buffer.from(img.data);
    data[1024 + 0x30] ^= 0xff; // s_wtime: only the checksum notices
    for (const live of [false, true]) {
      await assert.rejects(
        () => ExtFilesystem.open(new MemorySource(data, 'torn.img'), { live }),
        (err: unknown) => err instanceof ExtError && err.code === 'EFSBADCRC' && /superblock/.test(err.message) && err.retryable === live && err.userFacing === true,
      );
    }
  });
});
