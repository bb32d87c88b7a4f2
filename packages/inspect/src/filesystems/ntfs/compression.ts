/**
 * Compressed attributes: the value is cut into compression units of
 * 2^compression_unit clusters (16 on every Windows volume). How a unit is
 * stored shows in its runs: all sparse, it reads as zeros; all allocated, it
 * is stored as is; partly allocated, its allocated clusters (at its start)
 * hold LZNT1 data that decompresses to the whole unit. Decompressed units are
 * kept in a small cache, as sequential reads straddle them.
 */
import { readFromRuns } from './clusterRuns.ts';
import { NtfsUnsupportedError } from './errors.ts';
import type { NtfsAttribute } from './inode.ts';
import { Lznt1Error, lznt1Decompress } from './lznt1.ts';
import { runsIn } from './runlist.ts';
import type { NtfsVolume } from './volume.ts';

/** Units larger than this are not something Windows writes (64 KiB clusters × 16 = 1 MiB). */
const MAX_UNIT_BYTES = 1024 * 1024;

/** Bytes [offset, offset + n) of a compressed attribute (within its data size). */
export async function readCompressed(vol: NtfsVolume, attr: NtfsAttribute, offset: number, n: number, structure: string): Promise<Buffer> {
  const cs = vol.clusterSize;
  const unitClusters = 2 ** attr.compressionUnit;
  const unitBytes = unitClusters * cs;
  if (attr.compressionUnit === 0 || unitBytes > MAX_UNIT_BYTES) {
    throw new NtfsUnsupportedError(vol.image, `compression units of ${unitClusters} clusters`, `${structure} is compressed with units of ${unitBytes} bytes`);
  }
  const out = Buffer.alloc(n);
  const first = Math.floor(offset / unitBytes);
  const last = Math.floor((offset + n - 1) / unitBytes);
  for (let u = first; u <= last; u++) {
    const unitStart = u * unitBytes;
    const from = Math.max(offset, unitStart);
    const to = Math.min(offset + n, unitStart + unitBytes);
    const bytes = await unit(vol, attr, u, unitClusters, structure);
    if (bytes) bytes.copy(out, from - offset, from - unitStart, to - unitStart);
  }
  return out;
}

/** One compression unit's decompressed bytes, or undefined when it is sparse (zeros). */
async function unit(vol: NtfsVolume, attr: NtfsAttribute, u: number, unitClusters: number, structure: string): Promise<Buffer | undefined> {
  const cs = vol.clusterSize;
  const vcn = u * unitClusters;
  const pieces = runsIn(attr.runs!, vcn, unitClusters);
  let covered = 0;
  let allocated = 0;
  let sawHole = false;
  for (const p of pieces) {
    if (p.vcn !== vcn + covered) break;
    covered += p.length;
    if (p.lcn === undefined) sawHole = true;
    else {
      // Stored clusters come first; a cluster after a hole would be outside the compressed data.
      if (sawHole) throw vol.corrupt(structure, undefined, `compression unit ${u} has stored clusters after a sparse part`);
      allocated += p.length;
    }
  }
  if (covered < unitClusters) {
    throw vol.corrupt(structure, undefined, `its runlist does not map compression unit ${u} (VCN ${vcn + covered})`);
  }
  if (allocated === 0) return undefined;
  const unitBytes = unitClusters * cs;
  if (allocated === unitClusters) return readFromRuns(vol, attr.runs!, vcn * cs, unitBytes, structure);
  const cache = vol.unitCache;
  const key = `${attr.recordNumber}:${attr.nameRaw.toString('hex')}:${u}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const p = (async () => {
    const compressed = await readFromRuns(vol, attr.runs!, vcn * cs, allocated * cs, structure);
    const dest = Buffer.alloc(unitBytes);
    try {
      lznt1Decompress(compressed, dest);
    } catch (err) {
      if (err instanceof Lznt1Error) throw vol.corrupt(`${structure}, compression unit ${u}`, undefined, err.message);
      throw err;
    }
    return dest;
  })();
  cache.set(key, p);
  p.catch(() => cache.delete(key, p));
  return p;
}
