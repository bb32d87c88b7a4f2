/**
 * btrfs through the guest path: superblock and sys_chunk_array, tree-block
 * headers, items and keys, node pointers, file extents (zstd, zlib, lzo,
 * inline). Seed by mkfs.btrfs, filled through a kernel mount. A touched
 * tree block or superblock gets its crc32c recomputed half of the time.
 */
import { crc32cStandard } from '../../../packages/inspect/src/filesystems/crc32c.ts';
import { SB, SUPERBLOCK_SIZE } from '../../../packages/inspect/src/filesystems/btrfs/layout.ts';
import { buildFuzzImage, SB_OFFSET, treeBlocks } from '../../../packages/inspect/test/filesystems/btrfs/fixtures.ts';
import type { FuzzInput } from '../engine/input.ts';
import type { FuzzTarget } from '../target.ts';
import { walkGuest } from './support.ts';

const blocks = new Map<Buffer, { starts: number[]; nodesize: number }>();

function restamp(input: FuzzInput, at: number, length: number): void {
  if (at + length > input.size) return;
  const b = input.read(at, length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(crc32cStandard(b.subarray(32)));
  input.write(at, crc);
}

const target: FuzzTarget = {
  name: 'btrfs',
  about: 'btrfs superblock, chunk array, tree blocks, items, file extents',
  async seeds() {
    const data = await buildFuzzImage();
    const nodesize = data.readUInt32LE(SB_OFFSET + SB.nodesize);
    const starts = treeBlocks(data, nodesize);
    blocks.set(data, { starts, nodesize });
    return [{ name: 'btrfs', data, hot: [[SB_OFFSET, SUPERBLOCK_SIZE], ...starts.map((s) => [s, nodesize] as [number, number])] }];
  },
  fuzz: (input) => walkGuest(input),
  mend(input, touched) {
    const info = blocks.get(input.base);
    if (!info) return;
    for (const t of touched) {
      if (t >= SB_OFFSET && t < SB_OFFSET + SUPERBLOCK_SIZE) restamp(input, SB_OFFSET, SUPERBLOCK_SIZE);
      const start = info.starts.find((s) => t >= s && t < s + info.nodesize);
      if (start !== undefined) restamp(input, start, info.nodesize);
    }
  },
};
export default target;
