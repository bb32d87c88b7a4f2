/**
 * Runlists (mapping pairs): how a non-resident attribute's clusters (VCNs)
 * map to the volume's clusters (LCNs). Each run is a header byte (low nibble:
 * bytes of the length, high nibble: bytes of the LCN delta), the length, then
 * the signed change of LCN from the previous run; a run without LCN bytes is
 * sparse (reads as zeros). A zero header ends the list.
 */

export interface Run {
  vcn: number;
  length: number;
  /** First cluster on the volume; undefined for a sparse run (a hole). */
  lcn: number | undefined;
}

/**
 * Decode the mapping pairs of one attribute fragment, which starts at
 * `lowestVcn` and must end at `highestVcn` (inclusive). Every run must lie
 * inside the volume's `nrClusters`. A string is why the runlist is corrupt.
 */
export function decodeRunlist(pairs: Buffer, lowestVcn: number, highestVcn: number, nrClusters: number): Run[] | string {
  const runs: Run[] = [];
  let vcn = lowestVcn;
  let lcn = 0;
  let pos = 0;
  // Each run takes at least two bytes, so the loop ends within pairs.length / 2 steps.
  while (pos < pairs.length) {
    const header = pairs[pos];
    if (header === 0) break;
    const lengthBytes = header & 0x0f;
    const lcnBytes = header >> 4;
    if (lengthBytes === 0 || lengthBytes > 8 || lcnBytes > 8) return `run at byte ${pos}: bad header 0x${header.toString(16)}`;
    if (pos + 1 + lengthBytes + lcnBytes > pairs.length) return `run at byte ${pos}: runs past the end of the mapping pairs`;
    const length = readSigned(pairs, pos + 1, lengthBytes);
    if (length <= 0n) return `run at byte ${pos}: length ${length} is not positive`;
    if (length > BigInt(nrClusters)) return `run at byte ${pos}: length ${length} is larger than the volume (${nrClusters} clusters)`;
    const n = Number(length);
    if (lcnBytes === 0) {
      runs.push({ vcn, length: n, lcn: undefined });
    } else {
      const delta = readSigned(pairs, pos + 1 + lengthBytes, lcnBytes);
      const next = BigInt(lcn) + delta;
      if (next < 0n || next + length > BigInt(nrClusters)) return `run at byte ${pos}: clusters ${next}..${next + length - 1n} are outside the volume (${nrClusters} clusters)`;
      lcn = Number(next);
      runs.push({ vcn, length: n, lcn });
    }
    vcn += n;
    if (!Number.isSafeInteger(vcn)) return `run at byte ${pos}: VCN beyond 2^53`;
    pos += 1 + lengthBytes + lcnBytes;
  }
  if (vcn !== highestVcn + 1) return `the runs cover VCNs ${lowestVcn}..${vcn - 1} but the attribute says ${lowestVcn}..${highestVcn}`;
  return runs;
}

/** A little-endian two's complement integer of `n` (1..8) bytes. */
function readSigned(buf: Buffer, at: number, n: number): bigint {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[at + i]);
  if (buf[at + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
  return v;
}

/** The run holding `vcn`, by binary search over runs sorted by VCN. */
export function findRun(runs: readonly Run[], vcn: number): Run | undefined {
  let lo = 0;
  let hi = runs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = runs[mid];
    if (vcn < r.vcn) hi = mid - 1;
    else if (vcn >= r.vcn + r.length) lo = mid + 1;
    else return r;
  }
  return undefined;
}

/** The runs covering [vcn, vcn + count), cut to that range (gaps left out). */
export function runsIn(runs: readonly Run[], vcn: number, count: number): Run[] {
  const end = vcn + count;
  const out: Run[] = [];
  let lo = 0;
  let hi = runs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (runs[mid].vcn + runs[mid].length <= vcn) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < runs.length && runs[i].vcn < end; i++) {
    const r = runs[i];
    const s = Math.max(r.vcn, vcn);
    const e = Math.min(r.vcn + r.length, end);
    if (e > s) out.push({ vcn: s, length: e - s, lcn: r.lcn === undefined ? undefined : r.lcn + (s - r.vcn) });
  }
  return out;
}
