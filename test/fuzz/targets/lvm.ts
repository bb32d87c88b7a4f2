/**
 * LVM2: the PV label, the metadata area header and the VG text of the first
 * of two physical volumes, read as a guest (the second PV is the seed's,
 * unchanged), so a damaged VG goes through assembly, segments and LV reads.
 * Seeds by the lvm2 tools. `lvm-text` fuzzes the metadata text parser alone.
 */
import { openGuest } from '@guestlens/inspect';
import { buildFuzzBase, type FuzzBase } from '../../../packages/inspect/test/volumes/lvm/lvmFuzzer.ts';
import { MemorySource } from '../../support/memorySource.ts';
import type { FuzzTarget } from '../target.ts';
import { typedOnly } from '../target.ts';
import { READ_BUDGET } from './support.ts';

let base: FuzzBase | undefined;
export async function lvmBase(): Promise<FuzzBase> {
  base ??= await buildFuzzBase();
  return base;
}

const target: FuzzTarget = {
  name: 'lvm',
  about: 'LVM2 PV label, metadata area, VG text, segments, LV reads',
  async seeds() {
    const b = await lvmBase();
    // The metadata lives in the first MiB; the rest of the PV is LV data no parser reads.
    return [{ name: 'p0', data: b.disks.get('p0.img')!, hot: [[512, 512], [4096, 512], [4608, 8192]] }];
  },
  async fuzz(input) {
    const b = await lvmBase();
    const sources = new Map([
      ['p0.img', input.source('p0.img', READ_BUDGET)],
      ['p1.img', new MemorySource(b.disks.get('p1.img')!, 'p1.img', undefined, 512, READ_BUDGET)],
    ]);
    const guest = await typedOnly(() => openGuest(['p0.img', 'p1.img'], { overlay: false, openImage: async (spec) => ({ source: sources.get(spec.path)!, format: 'raw', close: async () => {} }) }));
    if (!guest) return;
    try {
      for (const f of (await typedOnly(() => guest.filesystems())) ?? []) if (f.kind === 'logical-volume') await typedOnly(() => f.source.read(0, Math.min(f.size, 65536)));
      for (const w of guest.warnings) if (!w.device.startsWith('/dev/') || /[\x00-\x1f\x7f-\xff]/.test(w.message)) throw new Error(`a problem badly said: ${JSON.stringify(w)}`);
    } finally {
      await guest.close();
    }
  },
};
export default target;
