/**
 * Hostile NTFS images: mutation fuzzing over the MFT records, runlists,
 * index blocks and boot sector of a real volume (a few thousand cases here;
 * `pnpm -s fuzz --target ntfs` runs longer), plus hand-made worst
 * cases: an index node whose child pointer leads back to itself, an LZNT1
 * stream that points before its start. Every failure must be a typed
 * NtfsError naming the image, no case may loop, memory stays bounded.
 */
import assert from 'node:assert/strict';
import { NtfsError, NtfsFilesystem } from '../../../src/filesystems/ntfs/index.ts';
import { Lznt1Error, lznt1Decompress } from '../../../src/filesystems/ntfs/lznt1.ts';
import { ATTR_TYPE, I30 } from '../../../src/filesystems/ntfs/layout.ts';
import { IndexTree } from '../../../src/filesystems/ntfs/indexTree.ts';
import { MemorySource } from '../../../../../test/support/memorySource.ts';
import { ntfs3gUnavailable } from '../../../../../test/support/ntfs3g.ts';
import { FUZZ_LIMITS, buildCorpus, runFuzz, type FuzzCorpus } from './ntfsFuzzer.ts';

const CASES = Number(process.env.GUESTLENS_FUZZ_CASES ?? process.env.NTFS_FUZZ_CASES ?? 300);

describe('ntfs driver: hostile images', function () {
  this.timeout(600_000);
  let corpus: FuzzCorpus;
  before(async function () {
    const why = await ntfs3gUnavailable();
    if (why) {
      console.log(`      ntfs-3g cannot be used here to build the corpus (${why}): skipping`);
      this.skip();
    }
    corpus = await buildCorpus();
  });

  it(`survives ${CASES} mutated images with typed errors only, no loop, bounded memory`, async () => {
    const heapBefore = process.memoryUsage().heapUsed;
    const { failures, stats } = await runFuzz(corpus, CASES, 0x7e57);
    const heapAfter = process.memoryUsage().heapUsed;
    console.log(`      ${stats.cases} cases, ${stats.opened} opened, ${stats.walked} walked; errors by code ${JSON.stringify(stats.errorsByCode)}; regions ${JSON.stringify(stats.byKind)}`);
    if (failures.length) {
      const f = failures[0];
      assert.fail(`${failures.length} failures; first: seed ${f.seed} mutating ${f.region}: ${(f.error as Error)?.stack ?? String(f.error)}`);
    }
    for (const kind of ['boot sector', 'MFT record header', 'MFT record attributes', 'runlist', 'index block', 'index root']) assert.ok(stats.byKind[kind] > 0, `no ${kind} mutated`);
    assert.ok(Object.keys(stats.errorsByCode).length >= 2, 'mutations produced too few kinds of error');
    assert.ok(stats.walked > CASES / 10, 'too few cases got as far as the walk');
    assert.ok(heapAfter - heapBefore < 256 * 1024 * 1024, `heap grew by ${heapAfter - heapBefore} bytes`);
  });

  it('an index node whose child pointer leads back to itself is an error, not a loop', async () => {
    const fs = await NtfsFilesystem.open(new MemorySource(corpus.data, 'clean.img'));
    const big = await fs.lookup(fs.rootIno, 'big');
    assert.ok(big);
    const inode = await fs.inode(big);
    const tree = IndexTree.open(fs.volume, inode, I30, 'filename')!;
    const last = tree.rootEntries[tree.rootEntries.length - 1];
    assert.ok(last.isEnd && last.childVcn !== undefined, 'the fixture directory needs index blocks below its root');
    const vcn = last.childVcn;
    const alloc = inode.attributes.find((a) => a.type === ATTR_TYPE.INDEX_ALLOCATION && a.name === I30)!;
    const cs = fs.volume.clusterSize;
    const run = alloc.runs!.find((r) => vcn >= r.vcn && vcn < r.vcn + r.length)!;
    const at = (run.lcn! + vcn - run.vcn) * cs;
    // Undo the fixups, make the block's end entry a node entry pointing at the block itself, redo them.
    const block = Buffer.from(corpus.data.subarray(at, at + tree.blockSize));
    const usaOfs = block.readUInt16LE(4);
    const usn = block.readUInt16LE(usaOfs);
    const strides = tree.blockSize / 512;
    for (let i = 1; i <= strides; i++) block.writeUInt16LE(block.readUInt16LE(usaOfs + i * 2), i * 512 - 2);
    let e = 0x18 + block.readUInt32LE(0x18);
    while (!(block.readUInt16LE(e + 12) & 2)) e += block.readUInt16LE(e + 8);
    block.writeUInt16LE(24, e + 8);
    block.writeUInt16LE(3, e + 12);
    block.writeBigInt64LE(BigInt(vcn), e + 16);
    block.writeUInt32LE(block.readUInt32LE(0x18 + 4) + 8, 0x18 + 4);
    for (let i = 1; i <= strides; i++) {
      block.copy(block, usaOfs + i * 2, i * 512 - 2, i * 512);
      block.writeUInt16LE(usn, i * 512 - 2);
    }
    const src = new MemorySource(corpus.data, 'self-loop.img', undefined, undefined, 20_000);
    for (let s = 0; s < strides; s++) src.patch(at + s * 512, block.subarray(s * 512, s * 512 + 512));
    const hostile = await NtfsFilesystem.open(src, { limits: FUZZ_LIMITS });
    await assert.rejects(hostile.lookup(big, 'zzzz'), (err: unknown) => err instanceof NtfsError && /cycle|twice/.test(err.message));
  });

  it('LZNT1 data that points before its start or overruns its chunk is a typed error', () => {
    const out = Buffer.alloc(4096 * 16);
    // A chunk header (compressed, 6 bytes) with a back reference as its first token.
    assert.throws(() => lznt1Decompress(Buffer.from([0x03, 0xb0, 0x01, 0x00, 0x10, 0x00]), out), /before any data/);
    // A chunk size past the end of the data.
    assert.throws(() => lznt1Decompress(Buffer.from([0xff, 0xbf, 0x00, 0x41]), out), Lznt1Error);
    // An uncompressed chunk must hold exactly 4096 bytes.
    assert.throws(() => lznt1Decompress(Buffer.concat([Buffer.from([0x05, 0x30]), Buffer.alloc(8)]), out), Lznt1Error);
    // A literal "abc", then a back reference of 3 bytes 3 back: "abcabc", the rest zeros.
    const ok = Buffer.alloc(4096);
    lznt1Decompress(Buffer.from([0x05, 0xb0, 0x08, 0x61, 0x62, 0x63, 0x00, 0x20]), ok);
    assert.equal(ok.subarray(0, 6).toString(), 'abcabc');
    assert.ok(ok.subarray(6).every((b) => b === 0));
  });
});
