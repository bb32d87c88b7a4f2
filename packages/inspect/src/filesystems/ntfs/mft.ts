/**
 * The Master File Table: every file is one MFT record (or a base record and
 * extension records), and $MFT is itself a file (record 0) whose $DATA holds
 * all the records. Opening reads record 0 at the boot sector's mft_lcn,
 * takes its $DATA runlist (following its attribute list when the MFT is so
 * fragmented that its runlist spills into extension records) and from then
 * on reads record N at byte N * record_size of that stream.
 *
 * Every record is fixed up and checked. When one of the first records (those
 * $MFTMirr mirrors: $MFT, $MFTMirr, $LogFile, $Volume) is damaged, the
 * mirror's copy is used and a warning says so.
 */
import { BoundedLru } from '@guestlens/block';
import { parseAttributeList } from './attributeList.ts';
import type { AttributeRecord } from './attribute.ts';
import { readFromRuns } from './clusterRuns.ts';
import { applyFixups } from './fixups.ts';
import { ATTR_TYPE, FILE_MFT } from './layout.ts';
import { parseMftRecord, type MftRecord } from './mftRecord.ts';
import { decodeRunlist, type Run } from './runlist.ts';
import { MAX_ATTRIBUTE_LIST_BYTES, type NtfsVolume } from './volume.ts';

export class Mft {
  private readonly cache: BoundedLru<number, Promise<MftRecord>>;

  private constructor(
    private readonly vol: NtfsVolume,
    /** The runs of $MFT's unnamed $DATA. */
    readonly runs: Run[],
    /** Records in $MFT (its data size / record size). */
    readonly recordCount: number,
    /** $MFT's own $DATA sizes. */
    readonly dataSize: number,
  ) {
    this.cache = new BoundedLru(Math.max(64, vol.limits.recordCacheEntries));
  }

  static async open(vol: NtfsVolume): Promise<Mft> {
    const { boot } = vol;
    const rs = boot.mftRecordSize;
    const at = boot.mftLcn * boot.clusterSize;
    const rec0 = await bootstrapRecord(vol, at, boot.mftMirrLcn * boot.clusterSize);
    const data = rec0.attributes.filter((a) => a.type === ATTR_TYPE.DATA && a.name === '');
    const first = data.find((a) => a.lowestVcn === 0);
    if (!first || !first.nonResident) throw vol.corrupt('MFT record 0 ($MFT)', at, 'it has no non-resident $DATA attribute starting at VCN 0');
    const fragments: AttributeRecord[] = [first];
    let runs = decodeOrThrow(vol, first, '$MFT');

    const list = rec0.attributes.find((a) => a.type === ATTR_TYPE.ATTRIBUTE_LIST);
    if (list) {
      // A fragmented $MFT: later pieces of its runlist are in extension records, which the earlier pieces locate.
      const value = list.nonResident ? await readListClusters(vol, list) : list.value!;
      const entries = parseAttributeList(value);
      if (typeof entries === 'string') throw vol.corrupt('attribute list of $MFT', at, entries);
      const wanted = entries.filter((e) => e.type === ATTR_TYPE.DATA && e.name === '' && e.recordNumber !== FILE_MFT).sort((x, y) => x.lowestVcn - y.lowestVcn);
      for (const e of wanted) {
        const bytes = await readFromRuns(vol, runs, e.recordNumber * rs, rs, `MFT record ${e.recordNumber} (an extension of $MFT)`);
        const rec = checkedRecord(vol, bytes, e.recordNumber);
        if (isProblem(rec)) throw recordError(vol, `MFT record ${e.recordNumber} (an extension of $MFT)`, undefined, rec);
        if (rec.baseRecord !== FILE_MFT) throw vol.corrupt(`MFT record ${e.recordNumber}`, undefined, `listed as an extension of $MFT but its base is record ${rec.baseRecord}`);
        const frag = rec.attributes.find((a) => a.type === ATTR_TYPE.DATA && a.name === '' && a.instance === e.instance);
        if (!frag || !frag.nonResident || frag.lowestVcn !== e.lowestVcn) throw vol.corrupt(`MFT record ${e.recordNumber}`, undefined, `it does not hold the fragment of $MFT's $DATA at VCN ${e.lowestVcn}`);
        const last = fragments[fragments.length - 1];
        if (frag.lowestVcn !== last.highestVcn + 1) throw vol.corrupt('$MFT runlist', undefined, `fragment at VCN ${frag.lowestVcn} does not follow the one ending at VCN ${last.highestVcn}`);
        fragments.push(frag);
        runs = runs.concat(decodeOrThrow(vol, frag, '$MFT'));
      }
    }
    if (runs.some((r) => r.lcn === undefined)) throw vol.corrupt('$MFT runlist', undefined, 'it has a sparse run, which $MFT cannot have');
    const recordCount = Math.floor(first.dataSize / rs);
    if (recordCount < 16) throw vol.corrupt('MFT record 0 ($MFT)', at, `$MFT holds ${recordCount} records, fewer than the 16 system files`);
    const mapped = runs.length ? runs[runs.length - 1].vcn + runs[runs.length - 1].length : 0;
    if (mapped * boot.clusterSize < recordCount * rs) throw vol.corrupt('$MFT runlist', undefined, `it maps ${mapped} clusters, fewer than the ${recordCount} records need`);
    const mft = new Mft(vol, runs, recordCount, first.dataSize);
    mft.cache.set(FILE_MFT, Promise.resolve(rec0));
    return mft;
  }

  /** MFT record `n`, fixed up and checked (in use or not). */
  record(n: number): Promise<MftRecord> {
    const hit = this.cache.get(n);
    if (hit) return hit;
    const p = this.load(n);
    this.cache.set(n, p);
    p.catch(() => this.cache.delete(n, p));
    return p;
  }

  /** Byte offset of record `n` on the device (for messages), when it is mapped. */
  offsetOf(n: number): number | undefined {
    const rs = this.vol.boot.mftRecordSize;
    const cs = this.vol.clusterSize;
    const vcn = Math.floor((n * rs) / cs);
    const run = this.runs.find((r) => vcn >= r.vcn && vcn < r.vcn + r.length);
    if (!run || run.lcn === undefined) return undefined;
    return (run.lcn + vcn - run.vcn) * cs + ((n * rs) % cs);
  }

  private async load(n: number): Promise<MftRecord> {
    const vol = this.vol;
    const rs = vol.boot.mftRecordSize;
    if (!Number.isSafeInteger(n) || n < 0 || n >= this.recordCount) throw vol.corrupt(`MFT record ${n}`, undefined, `beyond the end of $MFT (${this.recordCount} records)`);
    const bytes = await readFromRuns(vol, this.runs, n * rs, rs, `MFT record ${n}`);
    const offset = this.offsetOf(n);
    const rec = checkedRecord(vol, bytes, n);
    if (!isProblem(rec)) return rec;
    if (n < vol.boot.mftMirrSize) {
      const mirrorAt = vol.boot.mftMirrLcn * vol.clusterSize + n * rs;
      const mirrored = checkedRecord(vol, await vol.read(mirrorAt, rs, `$MFTMirr record ${n}`), n);
      if (!isProblem(mirrored)) {
        vol.warn(`MFT record ${n} is damaged (${rec.reason}); its copy in $MFTMirr was used`);
        return mirrored;
      }
    }
    throw recordError(vol, `MFT record ${n}`, offset, rec);
  }
}

/** Why a record cannot be used; `torn` when its fixups do not match (an incomplete multi-sector transfer). */
interface RecordProblem {
  reason: string;
  torn?: { expected: number; found: number };
}

/** Fixups and checks of one record. */
function checkedRecord(vol: NtfsVolume, raw: Buffer, n: number): MftRecord | RecordProblem {
  const fixed = applyFixups(raw);
  if (!fixed.ok) {
    if (fixed.kind === 'header') return { reason: fixed.reason };
    return {
      reason: `incomplete multi-sector transfer: sector ${fixed.stride} ends with 0x${fixed.found.toString(16)}, not the update sequence number 0x${fixed.expected.toString(16)}`,
      torn: { expected: fixed.expected, found: fixed.found },
    };
  }
  const rec = parseMftRecord(fixed.record, n, vol.boot.mftRecordSize);
  return typeof rec === 'string' ? { reason: rec } : rec;
}

function isProblem(r: MftRecord | RecordProblem): r is RecordProblem {
  return 'reason' in r;
}

function recordError(vol: NtfsVolume, structure: string, offset: number | undefined, p: RecordProblem): Error {
  return p.torn ? vol.fixupError(structure, offset, p.torn.expected, p.torn.found) : vol.corrupt(structure, offset, p.reason);
}

async function bootstrapRecord(vol: NtfsVolume, at: number, mirrorAt: number): Promise<MftRecord> {
  const rs = vol.boot.mftRecordSize;
  const rec = checkedRecord(vol, await vol.read(at, rs, 'MFT record 0 ($MFT)'), FILE_MFT);
  if (!isProblem(rec)) return rec;
  const mirrored = checkedRecord(vol, await vol.read(mirrorAt, rs, '$MFTMirr record 0'), FILE_MFT);
  if (isProblem(mirrored)) throw vol.corrupt('MFT record 0 ($MFT)', at, `${rec.reason}; its copy in $MFTMirr is damaged too (${mirrored.reason})`);
  vol.warn(`MFT record 0 ($MFT) is damaged (${rec.reason}); its copy in $MFTMirr was used`);
  return mirrored;
}

function decodeOrThrow(vol: NtfsVolume, a: AttributeRecord, what: string): Run[] {
  const runs = decodeRunlist(a.mappingPairs!, a.lowestVcn, a.highestVcn, vol.boot.nrClusters);
  if (typeof runs === 'string') throw vol.corrupt(`runlist of ${what}`, undefined, runs);
  return runs;
}

/** $MFT's own attribute list, when non-resident: its clusters read straight from its runlist. */
async function readListClusters(vol: NtfsVolume, list: AttributeRecord): Promise<Buffer> {
  if (list.dataSize > MAX_ATTRIBUTE_LIST_BYTES) throw vol.corrupt('attribute list of $MFT', undefined, `${list.dataSize} bytes, over the 256 KiB NTFS allows`);
  return readFromRuns(vol, decodeOrThrow(vol, list, 'the attribute list of $MFT'), 0, list.dataSize, 'attribute list of $MFT');
}
