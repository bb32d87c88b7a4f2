/**
 * qcow2: header, extensions, L1/L2 tables (standard and extended), refcounts,
 * compressed clusters, and a layer over a backing file (served unmutated by
 * name, see readImage). Seeds by qemu-img and qemu-io.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeSeeds } from '../../../packages/qcow2-js/test/support/fuzzer.ts';
import type { FuzzTarget } from '../target.ts';
import { readImage } from './support.ts';

/** The backing file of the seed that has one, by the base name its top layer gives. */
const neighbours = new Map<string, Buffer>();

const target: FuzzTarget = {
  name: 'qcow2',
  about: 'qcow2 header, extensions, L1/L2, refcounts, zlib/zstd clusters, a backing file',
  async seeds(dir, { quick }) {
    const seeds = await makeSeeds(dir);
    if (!quick) neighbours.set('seed-base.qcow2', await readFile(join(dir, 'seed-base.qcow2')));
    const chosen = quick ? seeds.filter((s) => ['v3-64k', 'extl2-16k', 'zlib-4k'].includes(s.name)) : seeds;
    return chosen.map((s) => ({ name: s.name, data: s.image, hot: s.interesting.map((o) => [o, 8] as [number, number]) }));
  },
  fuzz: (input) => readImage('qcow2', input, neighbours),
};
export default target;
