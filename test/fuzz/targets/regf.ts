/** Registry hives: base block, hbins, key nodes, lists, values, security cells, transaction logs. Seeds by hivexregedit. */
import { openHive } from '../../../packages/regf/src/index.ts';
import { buildFuzzImages } from '../../../packages/regf/test/fuzzImages.ts';
import { exercise } from '../../../packages/regf/test/fuzzer.ts';
import type { FuzzTarget } from '../target.ts';
import { typedOnly } from '../target.ts';
import { hotOf, READ_BUDGET } from './support.ts';

const target: FuzzTarget = {
  name: 'regf',
  about: 'registry hive base block, hbins, cells, key/value lists',
  async seeds(_dir, { quick }) {
    const images = await buildFuzzImages();
    return (quick ? images.slice(0, 2) : images).map((i) => ({ name: i.name, data: i.data, hot: hotOf(i.regions) }));
  },
  async fuzz(input) {
    const hive = await typedOnly(() => openHive(input.source('fuzz.hive', READ_BUDGET), { limits: { cacheBytes: 16384, maxCellBytes: 1 << 20, maxValueBytes: 1 << 20 } }));
    if (hive) await exercise(hive);
  },
};
export default target;
