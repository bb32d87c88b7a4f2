/**
 * What a device holds: the first of our probes that recognises it, in an
 * order where a stronger signature is tried before a weaker one (the FAT
 * probe accepts little more than a jump byte, so it comes after NTFS).
 */
import type { BlockSource } from '@guestlens/block';
import { probeBtrfs } from './btrfs.ts';
import { probeExt } from './ext.ts';
import { probeLuks } from './luks.ts';
import { probeLvm2 } from './lvm2.ts';
import { probeNtfs } from './ntfs.ts';
import { ProbeReader } from './reader.ts';
import { UNKNOWN, type ProbeResult } from './result.ts';
import { probeSwap } from './swap.ts';
import { probeVfat } from './vfat.ts';
import { probeXfs } from './xfs.ts';

export type { ProbeResult, ProbeUsage } from './result.ts';
export { extTypeFromFeatures } from './ext.ts';

type Prober = (r: ProbeReader) => Promise<ProbeResult | undefined>;

const PROBERS: Prober[] = [probeLuks, probeLvm2, probeExt, probeXfs, probeBtrfs, probeNtfs, probeVfat, probeSwap];

/** Identify the filesystem (or volume member, or swap) on `source`, as `blkid -p` would. */
export async function probeFilesystem(source: BlockSource): Promise<ProbeResult> {
  const reader = new ProbeReader(source);
  for (const probe of PROBERS) {
    const found = await probe(reader);
    if (found) return withoutUndefined(found);
  }
  return { ...UNKNOWN };
}

function withoutUndefined(r: ProbeResult): ProbeResult {
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as ProbeResult;
}
