/** FAT12/16/32 through the guest path: boot sector, FSInfo, FATs, directories. Seeds by mkfs.vfat and mtools. */
import { buildFuzzImages } from '../../../packages/inspect/test/filesystems/fat/fatFuzzer.ts';
import type { FuzzTarget } from '../target.ts';
import { hotOf, walkGuest } from './support.ts';

const target: FuzzTarget = {
  name: 'fat',
  about: 'FAT boot sector, FSInfo, FAT chains, directories, long names',
  async seeds(_dir, { quick }) {
    const images = await buildFuzzImages();
    return (quick ? images.slice(0, 2) : images).map((i) => ({ name: i.name, data: i.data, hot: hotOf(i.regions) }));
  },
  fuzz: (input) => walkGuest(input),
};
export default target;
