/**
 * XFS through the guest path: superblock, AGF/AGI, inode btrees, inodes,
 * bmap btrees, directory and attribute blocks, the log. Seeds by mkfs.xfs
 * (filled through a loop mount where the kernel can). A mutation inside a
 * v5 structure gets its CRC recomputed half of the time.
 */
import { buildFuzzImages } from '../../../packages/inspect/test/filesystems/xfs/xfsFuzzer.ts';
import { xfsChecksum } from '../../../packages/inspect/src/filesystems/xfs/checksum.ts';
import { loopMountUnavailable } from '../../support/kernel.ts';
import type { FuzzInput } from '../engine/input.ts';
import type { FuzzTarget } from '../target.ts';
import { hotOf, walkGuest } from './support.ts';

/** Each seed's structures that carry a CRC, by its bytes. */
const crcRegions = new Map<Buffer, { offset: number; length: number; crcOffset: number }[]>();

function mend(input: FuzzInput, touched: number[]): void {
  for (const r of crcRegions.get(input.base) ?? []) {
    if (!touched.some((t) => t >= r.offset && t < r.offset + r.length) || r.offset + r.length > input.size) continue;
    const block = input.read(r.offset, r.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32LE(xfsChecksum(block, r.crcOffset));
    input.write(r.offset + r.crcOffset, crc);
  }
}

const target: FuzzTarget = {
  name: 'xfs',
  about: 'XFS superblock, AGF/AGI, inode and bmap btrees, directories, attributes, log',
  async seeds(_dir, { quick }) {
    const images = await buildFuzzImages({ kernel: !(await loopMountUnavailable()) });
    const chosen = quick ? images.slice(0, 2) : images;
    return chosen.map((i) => {
      if (i.v5) crcRegions.set(i.data, i.regions.flatMap((r) => (r.crcOffset === undefined ? [] : [{ offset: r.offset, length: r.length, crcOffset: r.crcOffset }])));
      return { name: i.name, data: i.data, hot: hotOf(i.regions) };
    });
  },
  fuzz: (input) => walkGuest(input),
  mend,
};
export default target;
