/**
 * ext2/3/4 through the guest path: superblock, group descriptors, inodes,
 * extent trees, indirect blocks, directory blocks (htree), journal blocks
 * (images that need recovery, made through a kernel mount where it can).
 * Seeds by mkfs.ext2/3/4 -d.
 */
import { buildFuzzImages } from '../../../packages/inspect/test/filesystems/ext/fuzzer.ts';
import { loopMountUnavailable } from '../../support/kernel.ts';
import type { FuzzTarget } from '../target.ts';
import { hotOf, walkGuest } from './support.ts';

const target: FuzzTarget = {
  name: 'ext',
  about: 'ext superblock, group descriptors, inodes, extent trees, htree, journal',
  async seeds(_dir, { quick }) {
    const images = await buildFuzzImages({ withJournalReplay: !(await loopMountUnavailable()) });
    const chosen = quick ? images.filter((i) => ['ext4-nocsum-inline-1k', 'ext2-4k', 'ext4-nocsum-needs-recovery'].includes(i.name)) : images;
    return chosen.map((i) => ({ name: i.name, data: i.data, hot: hotOf(i.regions) }));
  },
  fuzz: (input) => walkGuest(input),
};
export default target;
