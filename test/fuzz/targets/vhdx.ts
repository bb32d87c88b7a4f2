/** vhdx: every single-file layout the seeds have (made by qemu-img or to the specification); checksums mended where the format has them. */
import { makeFormatSeeds } from '../../../packages/qcow2-js/test/support/formatSeeds.ts';
import type { FuzzTarget } from '../target.ts';
import { formatMend, formatSeeds } from './formatSeeds.ts';
import { readImage } from './support.ts';

const target: FuzzTarget = {
  name: 'vhdx',
  about: 'vhdx headers, tables and metadata',
  seeds: (dir, options) => formatSeeds(makeFormatSeeds('vhdx', dir), options.quick),
  fuzz: (input) => readImage('vhdx', input),
  mend: (input) => formatMend.get(input.base)?.(input),
};
export default target;
