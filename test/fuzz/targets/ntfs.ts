/** NTFS through the guest path: boot sector, MFT records, attributes, runlists, index roots and blocks. Seed by mkntfs and ntfs-3g. */
import { buildCorpus } from '../../../packages/inspect/test/filesystems/ntfs/ntfsFuzzer.ts';
import type { FuzzTarget } from '../target.ts';
import { hotOf, walkGuest } from './support.ts';

const target: FuzzTarget = {
  name: 'ntfs',
  about: 'NTFS boot sector, MFT records, runlists, indexes',
  async seeds() {
    const corpus = await buildCorpus();
    return [{ name: 'ntfs', data: corpus.data, hot: hotOf(corpus.regions) }];
  },
  fuzz: (input) => walkGuest(input),
};
export default target;
