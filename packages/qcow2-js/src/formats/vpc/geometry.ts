/**
 * The virtual size of a VHD, by QEMU's rule (block/vpc.c, vpc_open): Virtual
 * PC sizes a disk by its CHS geometry, Hyper-V and most other writers by the
 * footer's current_size, and the two disagree (the CHS product is usually a
 * little smaller). QEMU picks by the creator application:
 *
 *   'vpc ', 'qemu' and anything unknown: cylinders x heads x sectors x 512
 *   'win ' (Hyper-V), 'qem2' (qemu-img -o force_size), 'd2v ' (Disk2vhd),
 *   'CTXS' (XenConverter), 'tap\0' (XenServer): current_size
 *
 * and uses current_size whatever the creator when the geometry is the
 * maximum (65535/16/255), which means the size did not fit in CHS. Both
 * round down to whole sectors. (QEMU 10 later changed the table; this is
 * the rule of the QEMU the tests run against, 7.2.)
 */
import { VHD_MAX_GEOMETRY, type VhdFooter } from './footer.ts';

const CURRENT_SIZE_CREATORS = ['win ', 'qem2', 'd2v ', 'CTXS', 'tap\0'];

export interface SizeRule {
  sectors: number;
  /** Which rule gave the size, for `image info`. */
  rule: string;
}

export function virtualSectors(footer: VhdFooter): SizeRule {
  const chs = footer.cylinders * footer.heads * footer.sectorsPerTrack;
  const app = JSON.stringify(footer.creatorApp.replace(/\0/g, '\\0'));
  const bySize = (why: string): SizeRule => ({ sectors: Number(footer.currentSize / 512n), rule: `current size (${why})` });
  if (CURRENT_SIZE_CREATORS.includes(footer.creatorApp)) return bySize(`creator ${app}`);
  if (chs === VHD_MAX_GEOMETRY) return bySize('the geometry is the CHS maximum');
  return { sectors: chs, rule: `CHS geometry ${footer.cylinders}/${footer.heads}/${footer.sectorsPerTrack} (creator ${app})` };
}
