/**
 * Hostile btrfs images, in memory: a real filesystem (made by mkfs.btrfs and
 * filled through the kernel with zstd, zlib and lzo extents, inline files,
 * a subvolume) mutated a few thousand times, seeded and reproducible: the
 * superblock (checksum recomputed, so the mutation is parsed), its
 * sys_chunk_array, tree-block headers, item headers and offsets (overlap),
 * keys (out of order), node pointers (loops: a pointer back up the tree),
 * and file extent items (compressed extents lying about their sizes); each
 * mutated block gets a correct checksum so the checks behind it are
 * reached. Every case must end in a FilesystemError (or an
 * UnsafeNumberError), within a read budget and bounded reads.
 */
import assert from 'node:assert/strict';
import { isGuestlensError } from '@guestlens/block';
import { openBtrfs } from '../../../src/filesystems/btrfs/index.ts';
import { FilesystemError } from '../../../src/filesystems/errors.ts';
import { crc32cStandard } from '../../../src/filesystems/crc32c.ts';
import { SB, HEADER, KEY_PTR_SIZE, LEAF_ITEM_SIZE, SUPERBLOCK_SIZE } from '../../../src/filesystems/btrfs/layout.ts';
import { MemorySource, ReadBudgetExceeded } from '../../../../../test/support/memorySource.ts';
import { Prng } from '../../../../../test/support/prng.ts';
import { loopMountUnavailable } from '../../../../../test/support/kernel.ts';
import { buildFuzzImage as buildSmall, SB_OFFSET, treeBlocks } from './fixtures.ts';

const CASES = Number(process.env.GUESTLENS_FUZZ_CASES ?? 600);

/** Patch [offset, offset + bytes.length) of a MemorySource whatever its patch units. */
function patchRange(src: MemorySource, offset: number, bytes: Buffer): void {
  let at = 0;
  while (at < bytes.length) {
    const unitEnd = (Math.floor((offset + at) / src.patchSize) + 1) * src.patchSize;
    const n = Math.min(bytes.length - at, unitEnd - (offset + at));
    src.patch(offset + at, bytes.subarray(at, at + n));
    at += n;
  }
}

function mutateBlock(rng: Prng, block: Buffer, nodesize: number): string {
  const nritems = block.readUInt32LE(HEADER.nritems);
  const level = block[HEADER.level];
  const itemSize = level === 0 ? LEAF_ITEM_SIZE : KEY_PTR_SIZE;
  const item = nritems ? rng.below(nritems) : 0;
  const at = HEADER.size + item * itemSize;
  switch (rng.below(9)) {
    case 0: block.writeUInt32LE(rng.below(3) ? rng.below(nritems * 2 + 2) : rng.next(), HEADER.nritems); return 'nritems';
    case 1: block[HEADER.level] = rng.below(3) ? rng.below(9) : rng.below(256); return 'level';
    case 2: block.writeBigUInt64LE(BigInt(rng.next()) * 4096n, HEADER.bytenr); return 'bytenr';
    case 3: // item data offset/size (overlap) or a key pointer (a loop or nonsense)
      if (level === 0) block.writeUInt32LE(rng.below(nodesize + 64), at + 17 + (rng.below(2) ? 4 : 0));
      else block.writeBigUInt64LE(rng.below(2) ? block.readBigUInt64LE(HEADER.bytenr) : BigInt(rng.next()) * 4096n, at + 17);
      return 'item offset/size or block pointer';
    case 4: { // keys out of order
      const other = HEADER.size + rng.below(Math.max(1, nritems)) * itemSize;
      const tmp = Buffer.from(block.subarray(at, at + 17));
      block.copy(block, at, other, other + 17);
      tmp.copy(block, other);
      return 'keys swapped';
    }
    case 5: block[at + 8] = rng.below(256); return 'key type';
    case 6: { // a file extent item's fields (compressed sizes, offsets): write into item data
      if (level !== 0 || nritems === 0) return 'none';
      const dataOff = HEADER.size + block.readUInt32LE(at + 17);
      const size = block.readUInt32LE(at + 21);
      if (dataOff + size > nodesize || size === 0) return 'none';
      const field = [8, 16, 20, 21, 29, 37, 45][rng.below(7)];
      if (field + 8 <= size) block.writeBigUInt64LE(rng.below(2) ? BigInt(rng.next()) : BigInt(rng.below(1 << 22)), dataOff + field);
      else if (field < size) block[dataOff + field] = rng.below(256);
      return 'item body field';
    }
    case 7: { // random bytes in item data
      for (let i = 0; i < 1 + rng.below(8); i++) block[HEADER.size + rng.below(nodesize - HEADER.size)] = rng.below(256);
      return 'random bytes';
    }
    default:
      block.writeBigUInt64LE(BigInt(rng.next()), HEADER.generation);
      return 'generation';
  }
}

function mutateSuperblock(rng: Prng, sb: Buffer): string {
  const fields = [SB.root, SB.chunk_root, SB.log_root, SB.total_bytes, SB.num_devices, SB.sectorsize, SB.nodesize, SB.sys_chunk_array_size, SB.root_level, SB.chunk_root_level, SB.incompat_flags, SB.csum_type];
  if (rng.below(2)) {
    const f = fields[rng.below(fields.length)];
    sb.writeUInt32LE(rng.below(3) ? rng.below(1 << 16) : rng.next(), f);
    return `field at ${f}`;
  }
  // sys_chunk_array: its chunk items (stripe counts, lengths, offsets, types)
  const size = sb.readUInt32LE(SB.sys_chunk_array_size);
  for (let i = 0; i < 1 + rng.below(4); i++) sb[SB.sys_chunk_array + rng.below(Math.max(1, size + 8))] = rng.below(256);
  return 'sys_chunk_array';
}

class RecordingSource extends MemorySource {
  readonly offsets = new Set<number>();
  override async read(offset: number, length: number): Promise<Buffer> {
    this.offsets.add(offset);
    return super.read(offset, length);
  }
}

async function exercise(src: MemorySource): Promise<void> {
  const fs = await openBtrfs(src, { limits: { maxReadBytes: 8 << 20 } });
  await fs.statfs();
  await fs.subvolumes();
  const visit = async (ino: number, depth: number) => {
    if (depth > 8) return;
    for (const e of await fs.readdir(ino)) {
      const st = await fs.getattr(e.ino);
      if (st.type === 'file') {
        await fs.read(e.ino, 0, Math.min(st.size, 1 << 20));
        await fs.extents(e.ino);
        await fs.listxattr(e.ino);
      } else if (st.type === 'symlink') await fs.readlink(e.ino);
      else if (st.type === 'directory') await visit(e.ino, depth + 1);
    }
  };
  await visit(fs.rootIno, 0);
}

describe('btrfs driver: hostile images', function () {
  this.timeout(600_000);
  let base: Buffer;
  let blocks: number[];
  let nodesize: number;

  before(async function () {
    const noLoop = await loopMountUnavailable();
    if (noLoop) {
      console.log(`      cannot fill a btrfs without a loop mount (${noLoop})`);
      this.skip();
    }
    base = await buildSmall();
    nodesize = base.readUInt32LE(SB_OFFSET + SB.nodesize);
    // Mutate the blocks a read of the whole tree reaches (the pristine image reads cleanly).
    const recording = new RecordingSource(base, 'pristine.img');
    await exercise(recording);
    const all = new Set(treeBlocks(base, nodesize));
    blocks = [...recording.offsets].filter((o) => all.has(o));
    assert.ok(blocks.length >= 5, `found ${blocks.length} tree blocks`);
  });

  it(`${CASES} seeded mutations end in typed errors, within bounded reads`, async () => {
    const counts = new Map<string, number>();
    for (let c = 0; c < CASES; c++) {
      const seed = 0x5eed0000 + c;
      const rng = new Prng(seed);
      const src = new MemorySource(base, `fuzz-${seed}.img`, base.length, 512, 20_000);
      let what: string;
      if (rng.below(5) === 0) {
        const sb = Buffer.from(base.subarray(SB_OFFSET, SB_OFFSET + SUPERBLOCK_SIZE));
        what = `superblock ${mutateSuperblock(rng, sb)}`;
        sb.writeUInt32LE(crc32cStandard(sb.subarray(32)), 0);
        patchRange(src, SB_OFFSET, sb);
      } else {
        const at = blocks[rng.below(blocks.length)];
        const block = Buffer.from(base.subarray(at, at + nodesize));
        what = `tree block at ${at}: ${mutateBlock(rng, block, nodesize)}`;
        if (rng.below(10)) block.writeUInt32LE(crc32cStandard(block.subarray(32)), 0);
        patchRange(src, at, block);
      }
      try {
        await exercise(src);
        counts.set('read without error', (counts.get('read without error') ?? 0) + 1);
      } catch (err) {
        if (err instanceof ReadBudgetExceeded) assert.fail(`seed ${seed} (${what}): ${err.message}`);
        if (!(err instanceof FilesystemError) && !(isGuestlensError(err) && (err as { code?: string }).code === 'EOVERFLOW')) {
          assert.fail(`seed ${seed} (${what}): not a typed error: ${(err as Error)?.stack ?? err}`);
        }
        const code = (err as FilesystemError).code;
        counts.set(code, (counts.get(code) ?? 0) + 1);
      }
      assert.ok(src.largestRead <= 8 << 20, `seed ${seed}: a read of ${src.largestRead} bytes`);
    }
    console.log(`      outcomes: ${[...counts].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  });

  it('a log tree left by a crash makes statfs inexact, with the reason', async () => {
    const src = new MemorySource(base, 'crashed.img');
    const sb = Buffer.from(base.subarray(SB_OFFSET, SB_OFFSET + SUPERBLOCK_SIZE));
    sb.writeBigUInt64LE(BigInt(blocks[0]), SB.log_root);
    sb.writeUInt32LE(crc32cStandard(sb.subarray(32)), 0);
    patchRange(src, SB_OFFSET, sb);
    const fs = await openBtrfs(src);
    const st = await fs.statfs();
    assert.equal(st.exact, false);
    assert.match(st.reason ?? '', /log tree/);
    assert.ok(fs.warnings.some((w) => /log tree/.test(w)));
  });

  it('a superblock with a bad checksum loses to a valid mirror only when the mirror exists; else a typed error', async () => {
    const src = new MemorySource(base, 'badsb.img');
    src.patch(SB_OFFSET + 0x100, Buffer.from([0xff, 0xee]));
    assert.ok(base.length > 0x4000000 + SUPERBLOCK_SIZE, 'the image has the 64 MiB mirror');
    const fs = await openBtrfs(src);
    assert.ok(fs.warnings.some((w) => /superblock at byte 67108864/.test(w)), fs.warnings.join('; '));
    src.patch(0x4000000 + 0x100, Buffer.from([0xff, 0xee]));
    await assert.rejects(openBtrfs(src), (err: FilesystemError) => err.code === 'EFSBADCRC');
  });
});
