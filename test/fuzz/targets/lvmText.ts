/** The LVM2 metadata text parser and VG model alone, on text: fast, so it gets many more cases than `lvm`. */
import { mutateText, runTextCase } from '../../../packages/inspect/test/volumes/lvm/lvmFuzzer.ts';
import type { FuzzTarget } from '../target.ts';
import { lvmBase } from './lvm.ts';

const target: FuzzTarget = {
  name: 'lvm-text',
  about: 'LVM2 metadata text: tokens, sections, numbers, segments',
  async seeds() {
    const b = await lvmBase();
    return [{ name: 'vg-text', data: Buffer.from(b.text, 'latin1') }];
  },
  // The text model's own mutations (numbers, segment types, sections) besides the engine's bytes.
  mutate(input, rnd) {
    const text = Buffer.from(mutateText(rnd, input.bytes().toString('latin1')), 'latin1');
    input.truncate(0);
    input.append(text);
    return 'lvm text mutation';
  },
  async fuzz(input) {
    await runTextCase(await lvmBase(), input.bytes().toString('latin1'));
  },
};
export default target;
