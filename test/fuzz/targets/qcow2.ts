/** qcow2: header, extensions, L1/L2 tables (standard and extended), refcounts, compressed clusters. Seeds by qemu-img and qemu-io. */
import { makeSeeds } from '../../../packages/qcow2-js/test/support/fuzzer.ts';
import type { FuzzTarget } from '../target.ts';
import { readImage } from './support.ts';

const target: FuzzTarget = {
  name: 'qcow2',
  about: 'qcow2 header, extensions, L1/L2, refcounts, zlib/zstd clusters',
  async seeds(dir, { quick }) {
    const seeds = (await makeSeeds(dir)).filter((s) => !s.backing);
    return (quick ? seeds.filter((s) => ['v3-64k', 'extl2-16k', 'zlib-4k'].includes(s.name)) : seeds).map((s) => ({ name: s.name, data: s.image, hot: s.interesting.map((o) => [o, 8] as [number, number]) }));
  },
  fuzz: (input) => readImage('qcow2', input),
};
export default target;
