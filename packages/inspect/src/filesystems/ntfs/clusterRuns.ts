/**
 * Bytes of a non-resident stream from its runlist: the VCN range a read needs
 * must be mapped (a VCN the runlist does not cover is damage, not zeros),
 * sparse runs read as zeros, and the rest goes through the shared run reader
 * (../runs.ts) in cluster units.
 */
import { readRuns, type BlockRun } from '../runs.ts';
import { runsIn, type Run } from './runlist.ts';
import type { NtfsVolume } from './volume.ts';

/** Bytes [offset, offset + n) of the stream mapped by `runs`; `structure` names it in errors. */
export async function readFromRuns(vol: NtfsVolume, runs: readonly Run[], offset: number, n: number, structure: string): Promise<Buffer> {
  if (n === 0) return Buffer.alloc(0);
  const cs = vol.clusterSize;
  const firstVcn = Math.floor(offset / cs);
  const endVcn = Math.ceil((offset + n) / cs);
  const pieces = runsIn(runs, firstVcn, endVcn - firstVcn);
  let expect = firstVcn;
  const blockRuns: BlockRun[] = [];
  for (const p of pieces) {
    if (p.vcn !== expect) break;
    blockRuns.push({ lblk: p.vcn, length: p.length, pblk: p.lcn });
    expect = p.vcn + p.length;
  }
  if (expect < endVcn) throw vol.corrupt(structure, undefined, `its runlist does not map VCN ${expect}`);
  for (const r of blockRuns) {
    if (r.pblk !== undefined && (r.pblk + r.length) * cs > vol.source.size) {
      throw vol.corrupt(structure, r.pblk * cs, `clusters ${r.pblk}..${r.pblk + r.length - 1} are beyond the end of the device`);
    }
  }
  return readRuns(vol.source, blockRuns, cs, offset, n);
}
