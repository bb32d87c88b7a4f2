/**
 * A file as NTFS describes it: its base MFT record and all its attributes,
 * wherever they are. Without an $ATTRIBUTE_LIST they are the base record's;
 * with one, the list names the record (base or extension) of each attribute
 * or runlist fragment, and the fragments of one attribute are joined into one
 * runlist. Everything is checked on the way: extension records must belong
 * to this base record, fragments must follow each other.
 */
import type { AttributeRecord } from './attribute.ts';
import { parseAttributeList, type AttributeListEntry } from './attributeList.ts';
import { readFromRuns } from './clusterRuns.ts';
import { ATTR_TYPE } from './layout.ts';
import type { MftRecord } from './mftRecord.ts';
import { decodeRunlist, type Run } from './runlist.ts';
import { MAX_ATTRIBUTE_LIST_BYTES, type NtfsVolume } from './volume.ts';

/** One attribute of a file, its fragments joined. */
export interface NtfsAttribute {
  type: number;
  name: string;
  nameRaw: Buffer;
  flags: number;
  nonResident: boolean;
  /** Resident value. */
  value?: Buffer;
  /** Non-resident: the whole runlist. */
  runs?: Run[];
  allocatedSize: number;
  dataSize: number;
  initializedSize: number;
  compressedSize?: number;
  compressionUnit: number;
  /** The MFT record holding the first fragment (for messages). */
  recordNumber: number;
}

export interface NtfsInode {
  number: number;
  /** The base record. */
  record: MftRecord;
  attributes: NtfsAttribute[];
  hasAttributeList: boolean;
}

export function attributesOf(ino: NtfsInode, type: number, name?: string): NtfsAttribute[] {
  return ino.attributes.filter((a) => a.type === type && (name === undefined || a.name === name));
}

export function attributeOf(ino: NtfsInode, type: number, name = ''): NtfsAttribute | undefined {
  return ino.attributes.find((a) => a.type === type && a.name === name);
}

/** The file described by base record `record` (which must be in use). */
export async function assembleInode(vol: NtfsVolume, record: MftRecord): Promise<NtfsInode> {
  const n = record.number;
  const listAttr = record.attributes.find((a) => a.type === ATTR_TYPE.ATTRIBUTE_LIST);
  const placed: { a: AttributeRecord; record: number }[] = [];
  if (!listAttr) {
    for (const a of record.attributes) placed.push({ a, record: n });
  } else {
    const entries = await readAttributeList(vol, n, listAttr);
    const extensions = new Map<number, MftRecord>();
    for (const e of entries) {
      let holder = record;
      if (e.recordNumber !== n) {
        holder = extensions.get(e.recordNumber) ?? (await extensionRecord(vol, n, e));
        extensions.set(e.recordNumber, holder);
      }
      const a = holder.attributes.find((x) => x.type === e.type && x.instance === e.instance);
      if (!a || !a.nameRaw.equals(e.nameRaw) || (a.nonResident && a.lowestVcn !== e.lowestVcn)) {
        throw vol.corrupt(`attribute list of MFT record ${n}`, undefined, `record ${e.recordNumber} holds no attribute 0x${e.type.toString(16)} "${e.name}" with instance ${e.instance} at VCN ${e.lowestVcn}`);
      }
      placed.push({ a, record: e.recordNumber });
    }
  }
  return { number: n, record, attributes: joinFragments(vol, n, placed), hasAttributeList: listAttr !== undefined };
}

async function readAttributeList(vol: NtfsVolume, n: number, list: AttributeRecord): Promise<AttributeListEntry[]> {
  const where = `attribute list of MFT record ${n}`;
  let value: Buffer;
  if (list.nonResident) {
    if (list.dataSize > MAX_ATTRIBUTE_LIST_BYTES) throw vol.corrupt(where, undefined, `${list.dataSize} bytes, over the 256 KiB NTFS allows`);
    const runs = decodeRunlist(list.mappingPairs!, list.lowestVcn, list.highestVcn, vol.boot.nrClusters);
    if (typeof runs === 'string') throw vol.corrupt(where, undefined, runs);
    value = await readFromRuns(vol, runs, 0, list.dataSize, where);
  } else {
    value = list.value!;
  }
  const entries = parseAttributeList(value);
  if (typeof entries === 'string') throw vol.corrupt(where, undefined, entries);
  return entries;
}

async function extensionRecord(vol: NtfsVolume, base: number, e: AttributeListEntry): Promise<MftRecord> {
  const rec = await vol.mft.record(e.recordNumber);
  if (!rec.inUse || rec.baseRecord !== base || rec.sequenceNumber !== e.sequenceNumber) {
    throw vol.corrupt(`MFT record ${e.recordNumber}`, vol.mft.offsetOf(e.recordNumber), `listed as an extension of record ${base}, but it is ${rec.inUse ? `an extension of ${rec.baseRecord}` : 'not in use'} (sequence ${rec.sequenceNumber}, expected ${e.sequenceNumber})`);
  }
  return rec;
}

/** Join each attribute's fragments (same type and name) in VCN order, keeping the order attributes first appear in. */
function joinFragments(vol: NtfsVolume, n: number, placed: { a: AttributeRecord; record: number }[]): NtfsAttribute[] {
  const groups = new Map<string, { a: AttributeRecord; record: number }[]>();
  for (const p of placed) {
    const key = `${p.a.type}:${p.a.nameRaw.toString('hex')}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(p);
  }
  const out: NtfsAttribute[] = [];
  for (const g of groups.values()) {
    const first = g[0].a;
    const where = `attribute 0x${first.type.toString(16)}${first.name ? ` "${first.name}"` : ''} of MFT record ${n}`;
    if (!first.nonResident) {
      // Several resident attributes of one type and name do occur ($FILE_NAME hard links): each is its own attribute.
      for (const p of g) {
        if (p.a.nonResident) throw vol.corrupt(where, undefined, 'resident and non-resident fragments are mixed');
        out.push(fromRecord(p.a, p.record));
      }
      continue;
    }
    const frags = [...g].sort((x, y) => x.a.lowestVcn - y.a.lowestVcn);
    if (frags[0].a.lowestVcn !== 0) throw vol.corrupt(where, undefined, `its first fragment starts at VCN ${frags[0].a.lowestVcn}, not 0`);
    let runs: Run[] = [];
    let next = 0;
    for (const f of frags) {
      if (!f.a.nonResident) throw vol.corrupt(where, undefined, 'resident and non-resident fragments are mixed');
      if (f.a.lowestVcn !== next) throw vol.corrupt(where, undefined, `fragment at VCN ${f.a.lowestVcn} does not follow the one ending at VCN ${next - 1}`);
      const r = decodeRunlist(f.a.mappingPairs!, f.a.lowestVcn, f.a.highestVcn, vol.boot.nrClusters);
      if (typeof r === 'string') throw vol.corrupt(`runlist of ${where} in record ${f.record}`, undefined, r);
      runs = runs.length ? runs.concat(r) : r;
      next = f.a.highestVcn + 1;
    }
    const head = frags[0].a;
    if (head.dataSize > head.allocatedSize && !(head.flags & 0x00ff)) throw vol.corrupt(where, undefined, `data size ${head.dataSize} is over the allocated size ${head.allocatedSize}`);
    if (head.initializedSize > head.dataSize) throw vol.corrupt(where, undefined, `initialized size ${head.initializedSize} is over the data size ${head.dataSize}`);
    out.push({ ...fromRecord(head, frags[0].record), runs });
  }
  return out;
}

function fromRecord(a: AttributeRecord, record: number): NtfsAttribute {
  return {
    type: a.type,
    name: a.name,
    nameRaw: a.nameRaw,
    flags: a.flags,
    nonResident: a.nonResident,
    ...(a.value ? { value: a.value } : {}),
    allocatedSize: a.allocatedSize,
    dataSize: a.dataSize,
    initializedSize: a.initializedSize,
    ...(a.compressedSize === undefined ? {} : { compressedSize: a.compressedSize }),
    compressionUnit: a.compressionUnit,
    recordNumber: record,
  };
}
