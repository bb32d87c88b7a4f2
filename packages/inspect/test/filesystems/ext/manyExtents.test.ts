/**
 * A file of a million extents (a hostile guest can make one; so can years of
 * appends to a sparse file): reads at its start, middle and end and an
 * extent map of a window cost a walk down the tree, not the whole tree.
 * The tree is written by code into a fresh mke2fs image (4 KiB blocks, no
 * journal): a depth-3 extent tree, extent i mapping logical block 2i to
 * one physical block, so data and holes alternate and no two extents merge. A few data blocks carry markers; the kernel's read-only mount of
 * the same image is the oracle for those bytes.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ExtFilesystem } from '../../../src/filesystems/ext/index.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { sh } from '../../../../../test/support/run.ts';
import { loopMountUnavailable, unmountAll, withKernelMount } from '../../../../../test/support/kernel.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { withRawSource } from '../../../../../test/support/rawSource.ts';

const BS = 4096;
const EXTENTS = 1_000_000;
const PER_BLOCK = Math.floor((BS - 12) / 12); // 340 entries in a tree block
const TREE_AT = 200_000; // tree blocks from here (group 6 of a 1 GiB filesystem: no superblock copy)
// Data blocks: BASE + (i mod SPAN), in group 3 past its superblock copy (the kernel refuses extents
// overlapping metadata, not extents sharing blocks), so the image stays small.
const BASE = 100_000;
const SPAN = 1000;
const MARKED = [0, 1, 339, 340, 250_123, EXTENTS - 1]; // distinct blocks (mod SPAN)
const pblkOf = (i: number) => BASE + (i % SPAN);

function header(b: Buffer, at: number, entries: number, max: number, depth: number): void {
  b.writeUInt16LE(0xf30a, at);
  b.writeUInt16LE(entries, at + 2);
  b.writeUInt16LE(max, at + 4);
  b.writeUInt16LE(depth, at + 6);
  b.writeUInt32LE(0, at + 8);
}

/** Write the tree and the markers; return the inode's i_block (60 bytes). */
function writeTree(fd: number): Buffer {
  let next = TREE_AT;
  const writeBlock = (b: Buffer) => {
    writeSync(fd, b, 0, BS, next * BS);
    return next++;
  };
  // Level 0: leaves of 340 extents.
  let level: { first: number; block: number }[] = [];
  for (let i = 0; i < EXTENTS; i += PER_BLOCK) {
    const b = Buffer.alloc(BS);
    const n = Math.min(PER_BLOCK, EXTENTS - i);
    header(b, 0, n, PER_BLOCK, 0);
    for (let k = 0; k < n; k++) {
      const e = 12 + k * 12;
      b.writeUInt32LE(2 * (i + k), e);
      b.writeUInt16LE(1, e + 4);
      b.writeUInt16LE(0, e + 6);
      b.writeUInt32LE(pblkOf(i + k), e + 8);
    }
    level.push({ first: 2 * i, block: writeBlock(b) });
  }
  // Index levels until what is left fits the inode's four slots.
  for (let depth = 1; level.length > 4; depth++) {
    const up: typeof level = [];
    for (let i = 0; i < level.length; i += PER_BLOCK) {
      const b = Buffer.alloc(BS);
      const kids = level.slice(i, i + PER_BLOCK);
      header(b, 0, kids.length, PER_BLOCK, depth);
      kids.forEach((c, k) => {
        b.writeUInt32LE(c.first, 12 + k * 12);
        b.writeUInt32LE(c.block, 12 + k * 12 + 4);
      });
      up.push({ first: kids[0].first, block: writeBlock(b) });
    }
    level = up;
    if (level.length <= 4) {
      const root = Buffer.alloc(60);
      header(root, 0, level.length, 4, depth + 1);
      level.forEach((c, k) => {
        root.writeUInt32LE(c.first, 12 + k * 12);
        root.writeUInt32LE(c.block, 12 + k * 12 + 4);
      });
      for (const i of MARKED) writeSync(fd, marker(i), 0, BS, pblkOf(i) * BS);
      return root;
    }
  }
  throw new Error('unreachable: a million extents need index levels');
}

function marker(i: number): Buffer {
  return Buffer.alloc(BS, `extent ${i} `);
}

describe('ext driver: a file of a million extents', function () {
  this.timeout(300_000);
  afterEach(unmountAll);

  it('reads at its start, middle and end, and maps a window, as the kernel reads it', async function () {
    const image = join(scratchDir('ext-many-extents'), 'fs.img');
    await sh('truncate', ['-s', '1G', image]);
    await sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', String(BS), '-O', '^has_journal,^metadata_csum', '-E', 'lazy_itable_init=1', '-d', scratchDir('ext-many-extents-empty'), image]);
    await sh('debugfs', ['-w', '-R', 'write /dev/null many', image]);
    const ino = Number(/Inode: (\d+)/.exec(await sh('debugfs', ['-R', 'stat many', image]))?.[1]);
    const where = /located at block (\d+), offset (0x[0-9a-f]+)/.exec(await sh('debugfs', ['-R', `imap <${ino}>`, image]));
    assert.ok(ino && where, 'debugfs did not say where the inode is');
    const inodeAt = Number(where[1]) * BS + Number(where[2]);
    const fd = openSync(image, 'r+');
    try {
      const iBlock = writeTree(fd);
      const inode = Buffer.alloc(160);
      readSync(fd, inode, 0, 160, inodeAt);
      const size = 2 * EXTENTS * BS;
      inode.writeUInt32LE(size % 2 ** 32, 0x04);
      inode.writeUInt32LE(Math.floor(size / 2 ** 32), 0x6c);
      inode.writeUInt32LE(inode.readUInt32LE(0x20) | 0x80000, 0x20); // EXT4_EXTENTS_FL
      iBlock.copy(inode, 0x28);
      writeSync(fd, inode, 0, 160, inodeAt);
    } finally {
      closeSync(fd);
    }

    const noLoop = await loopMountUnavailable();
    await guardImages([image], async () => {
      await withRawSource(image, async (src) => {
        const fs = await ExtFilesystem.open(src);
        assert.equal((await fs.getattr(ino)).size, 2 * EXTENTS * BS);
        const rssBefore = process.memoryUsage().rss;
        for (const i of MARKED) {
          assert.deepEqual(await fs.read(ino, 2 * i * BS, BS), marker(i), `logical block ${2 * i}`);
          assert.deepEqual(await fs.read(ino, (2 * i + 1) * BS, BS), Buffer.alloc(BS), `the hole after extent ${i}`);
        }
        const window = await fs.extents(ino, 2 * 700_000 * BS, 8 * BS);
        assert.deepEqual(window.map((e) => [e.kind, e.offset / BS, e.length / BS, e.physical === undefined ? undefined : e.physical / BS]), [
          ['data', 1_400_000, 1, pblkOf(700_000)], ['hole', 1_400_001, 1, undefined],
          ['data', 1_400_002, 1, pblkOf(700_001)], ['hole', 1_400_003, 1, undefined],
          ['data', 1_400_004, 1, pblkOf(700_002)], ['hole', 1_400_005, 1, undefined],
          ['data', 1_400_006, 1, pblkOf(700_003)], ['hole', 1_400_007, 1, undefined],
        ]);
        const grew = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
        assert.ok(grew < 64, `reads grew the RSS by ${grew.toFixed(0)} MiB: the tree was read whole`);
      });
      if (noLoop) return console.log(`      the kernel cannot be asked (${noLoop}): checked against the markers only`);
      await withKernelMount(image, { copy: false }, async (mnt) => {
        const kfd = openSync(join(mnt.dir, 'many'), 'r');
        try {
          for (const i of [0, 250_123, EXTENTS - 1]) {
            const b = Buffer.alloc(BS);
            readSync(kfd, b, 0, BS, 2 * i * BS);
            assert.deepEqual(b, marker(i), `the kernel reads logical block ${2 * i} differently`);
          }
        } finally {
          closeSync(kfd);
        }
      });
    });
  });
});
