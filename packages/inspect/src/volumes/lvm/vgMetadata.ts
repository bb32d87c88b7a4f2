/**
 * What a VG's text metadata says, checked as LVM's importer checks it
 * (lib/format_text/import_vsn1.c): the VG is the first section of the text,
 * with its id, seqno and extent size, its physical volumes (where each one's
 * extents start and how many it has) and its logical volumes, each a list
 * of segments that must tile the LV from extent 0 without gaps.
 *
 * A fault in the VG as a whole (no id, no extent size, a bad PV entry, a
 * name LVM would refuse) makes the copy unusable: LvmMetadataError. A fault
 * in one LV (a malformed segment) is kept on that LV as `invalid`, so the
 * assembler names it and reads the others. Segment types guestlens does not
 * read are kept by name (`unsupported`).
 */
import type { ConfigScalar, ConfigSection } from './configText.ts';
import { LvmMetadataError, printable, shown } from './errors.ts';
import { LIMITS, isValidName } from './layout.ts';

export interface PhysicalVolumeMeta {
  /** The name segments use for it: pv0, pv1, ... */
  name: string;
  /** Its UUID, as in its PV header (6-4-4-4-4-4-6). */
  id: string;
  /** The device LVM last saw it on (a host's or the guest's /dev/...): a hint for messages only. */
  deviceHint?: string;
  /** Sectors from the PV's start to its first extent. */
  peStart: number;
  peCount: number;
  /** LVM marked it missing (vgreduce --removemissing was not run). */
  missing: boolean;
}

/** Where an area of a segment lies: extents of a PV, or extents of another (hidden) LV. */
export type AreaRef = { kind: 'pv'; name: string; start: number } | { kind: 'lv'; name: string; start: number };

interface SegmentBase {
  /** The section's key (segment1, ...), as messages show it. */
  key: string;
  startExtent: number;
  extentCount: number;
  /** The type as written, without its +FLAGS. */
  typeName: string;
  typeFlags: readonly string[];
}

export type SegmentMeta = SegmentBase &
  (
    | { type: 'striped'; /** Sectors; 0 for a single stripe (linear). */ stripeSize: number; areas: AreaRef[] }
    | { type: 'mirror'; areas: AreaRef[]; log?: string; pvmove: boolean }
    | { type: 'raid1'; images: string[]; dataOffset: number }
    | { type: 'raid0'; stripeSize: number; images: string[] }
    | { type: 'thin-pool'; metadata: string; pool: string; chunkSize: number; transactionId: bigint }
    | { type: 'thin'; pool: string; deviceId: number; transactionId: bigint; externalOrigin?: string }
    | { type: 'snapshot'; origin: string; cow: string; merging: boolean; chunkSize: number }
    | { type: 'zero' }
    | { type: 'error' }
    | { type: 'unsupported' }
  );

export interface LogicalVolumeMeta {
  name: string;
  id: string;
  status: ReadonlySet<string>;
  flags: ReadonlySet<string>;
  /** Extents in all segments. */
  extentCount: number;
  segments: SegmentMeta[];
  /** Why its segments cannot be used, when they cannot. */
  invalid?: string;
}

export interface VolumeGroupMeta {
  name: string;
  id: string;
  seqno: number;
  /** Sectors per extent. */
  extentSize: number;
  status: ReadonlySet<string>;
  lockType?: string;
  pvs: Map<string, PhysicalVolumeMeta>;
  lvs: Map<string, LogicalVolumeMeta>;
}

const UINT32_MAX = 2 ** 32 - 1;
/** The shape of LVM ids in text: 32 id characters grouped 6-4-4-4-4-4-6. */
const ID_PATTERN = /^[A-Za-z0-9!#]{6}-[A-Za-z0-9!#]{4}-[A-Za-z0-9!#]{4}-[A-Za-z0-9!#]{4}-[A-Za-z0-9!#]{4}-[A-Za-z0-9!#]{4}-[A-Za-z0-9!#]{6}$/;

/** Reads the entries of one section, failing with the section's place in the text. */
class SectionReader {
  constructor(
    readonly node: ConfigSection,
    readonly where: string,
    readonly source: string,
  ) {}

  fail(reason: string, key?: string): never {
    const entry = key === undefined ? undefined : this.node.children.get(key);
    const line = entry?.line ?? this.node.line;
    throw new LvmMetadataError(this.source, `${this.where} (line ${line})`, key === undefined ? reason : `${key}: ${reason}`);
  }

  has(key: string): boolean {
    return this.node.children.has(key);
  }

  private scalar(key: string): ConfigScalar | undefined {
    const e = this.node.children.get(key);
    if (!e) return undefined;
    if (e.kind !== 'value' || e.value.kind === 'array') this.fail('a single value was expected', key);
    return e.value;
  }

  /** An unsigned integer in [min, max] (numbers past 2^53 are refused, whatever max says). */
  int(key: string, options: { min?: number; max?: number } = {}): number {
    const v = this.optionalInt(key, options);
    if (v === undefined) this.fail('missing', key);
    return v;
  }

  optionalInt(key: string, { min = 0, max = Number.MAX_SAFE_INTEGER }: { min?: number; max?: number } = {}): number | undefined {
    const v = this.scalar(key);
    if (v === undefined) return undefined;
    if (v.kind !== 'int') this.fail('an integer was expected', key);
    if (v.value < BigInt(min) || v.value > BigInt(max)) this.fail(`${v.value} is outside ${min}..${max}`, key);
    return Number(v.value);
  }

  bigint(key: string): bigint {
    const v = this.scalar(key);
    if (v === undefined) this.fail('missing', key);
    if (v.kind !== 'int' || v.value < 0n) this.fail('a non-negative integer was expected', key);
    return v.value;
  }

  str(key: string): string {
    const v = this.optionalStr(key);
    if (v === undefined) this.fail('missing', key);
    return v;
  }

  optionalStr(key: string): string | undefined {
    const v = this.scalar(key);
    if (v === undefined) return undefined;
    if (v.kind !== 'string') this.fail('a string was expected', key);
    return v.value;
  }

  /** A list of items (an array; a single value counts as a list of one, as dm_config_get_list allows). */
  list(key: string): ConfigScalar[] | undefined {
    const e = this.node.children.get(key);
    if (!e) return undefined;
    if (e.kind !== 'value') this.fail('a list was expected', key);
    return e.value.kind === 'array' ? e.value.items : [e.value];
  }

  strings(key: string): string[] {
    const items = this.list(key) ?? [];
    return items.map((i) => (i.kind === 'string' ? i.value : this.fail('a list of strings was expected', key)));
  }

  section(key: string): ConfigSection | undefined {
    const e = this.node.children.get(key);
    if (!e) return undefined;
    if (e.kind !== 'section') this.fail('a section was expected', key);
    return e;
  }

  sections(): ConfigSection[] {
    return [...this.node.children.values()].filter((e): e is ConfigSection => e.kind === 'section');
  }
}

/** Interpret a parsed text as a VG. `source` names the PV the copy was read from. */
export function readVolumeGroup(root: ConfigSection, source: string): VolumeGroupMeta {
  const top: SectionReader = new SectionReader(root, 'top level', source);
  // _vsn1_check_version: what kind of text this is.
  if (top.optionalStr('contents') !== 'Text Format Volume Group') top.fail('this is not VG metadata ("contents" is missing or different)');
  if (top.optionalInt('version') !== 1) top.fail('only version 1 of the text format exists');
  // The VG is the first section; top-level values (contents, description, ...) are skipped.
  const vgSection = [...root.children.values()].find((e): e is ConfigSection => e.kind === 'section');
  if (!vgSection) top.fail('no volume group section');
  if (!isValidName(vgSection.key)) top.fail(`the volume group name ${shown(vgSection.key)} is not one LVM allows`);
  const vg: SectionReader = new SectionReader(vgSection, `volume group ${vgSection.key}`, source);
  const id = vg.str('id');
  if (!ID_PATTERN.test(id)) vg.fail(`${shown(id)} is not an LVM id`, 'id');
  const status = new Set(vg.strings('status'));
  const result: VolumeGroupMeta = {
    name: vgSection.key,
    id,
    seqno: vg.int('seqno', { max: UINT32_MAX }),
    extentSize: vg.int('extent_size', { min: 1, max: UINT32_MAX }),
    status,
    lockType: vg.optionalStr('lock_type'),
    pvs: new Map(),
    lvs: new Map(),
  };
  const pvSection = vg.section('physical_volumes');
  if (!pvSection) vg.fail('no physical_volumes section');
  const pvSections = new SectionReader(pvSection, `${vg.where}, physical_volumes`, source).sections();
  if (pvSections.length > LIMITS.physicalVolumes) vg.fail(`more than ${LIMITS.physicalVolumes} physical volumes`);
  const pvIds = new Set<string>();
  for (const s of pvSections) {
    if (!isValidName(s.key)) vg.fail(`the physical volume name ${shown(s.key)} is not one LVM writes`);
    const pv = readPhysicalVolume(new SectionReader(s, `${vg.where}, physical volume ${s.key}`, source));
    if (pvIds.has(pv.id)) vg.fail(`physical volume ${shown(pv.id)} is listed twice`);
    pvIds.add(pv.id);
    result.pvs.set(pv.name, pv);
  }
  const lvSection = vg.section('logical_volumes');
  const lvSections = lvSection ? new SectionReader(lvSection, `${vg.where}, logical_volumes`, source).sections() : [];
  if (lvSections.length > LIMITS.logicalVolumes) vg.fail(`more than ${LIMITS.logicalVolumes} logical volumes`);
  // LV names first, as LVM reads them (_read_lvnames): segments may name LVs written after them.
  for (const s of lvSections) {
    if (!isValidName(s.key)) vg.fail(`the logical volume name ${shown(s.key)} is not one LVM allows`);
    if (result.pvs.has(s.key)) vg.fail(`${shown(s.key)} names both a physical and a logical volume`);
  }
  const names: Names = { pvs: new Set(result.pvs.keys()), lvs: new Set(lvSections.map((s) => s.key)) };
  for (const s of lvSections) result.lvs.set(s.key, readLogicalVolume(new SectionReader(s, `logical volume ${result.name}/${s.key}`, source), names));
  return result;
}

function readPhysicalVolume(r: SectionReader): PhysicalVolumeMeta {
  const id = r.str('id');
  if (!ID_PATTERN.test(id)) r.fail(`${shown(id)} is not an LVM id`, 'id');
  const flags = new Set([...r.strings('status'), ...r.strings('flags')]);
  return {
    name: r.node.key,
    id,
    deviceHint: r.optionalStr('device'),
    peStart: r.int('pe_start'),
    peCount: r.int('pe_count', { max: UINT32_MAX }),
    missing: flags.has('MISSING'),
  };
}

/** The names segments may refer to. */
interface Names {
  pvs: ReadonlySet<string>;
  lvs: ReadonlySet<string>;
}

function readLogicalVolume(r: SectionReader, vg: Names): LogicalVolumeMeta {
  const lv: LogicalVolumeMeta = {
    name: r.node.key,
    id: '',
    status: new Set(),
    flags: new Set(),
    extentCount: 0,
    segments: [],
  };
  try {
    lv.id = r.str('id');
    lv.status = new Set(r.strings('status'));
    lv.flags = new Set(r.strings('flags'));
    const segmentCount = r.int('segment_count', { min: 1, max: LIMITS.segmentsPerVolume });
    const sections = r.sections();
    if (sections.length !== segmentCount) r.fail(`segment_count is ${segmentCount} but there are ${sections.length} segments`);
    const segments = sections.map((s) => readSegment(new SectionReader(s, `${r.where}, ${printable(s.key)}`, r.source), vg));
    segments.sort((a, b) => a.startExtent - b.startExtent);
    let next = 0;
    for (const s of segments) {
      if (s.startExtent !== next) r.fail(s.startExtent > next ? `no segment covers extents ${next}-${s.startExtent - 1}` : `${s.key} overlaps the segment before it`);
      next += s.extentCount;
      if (next > UINT32_MAX) r.fail('more than 2^32 extents');
    }
    lv.segments = segments;
    lv.extentCount = next;
  } catch (err) {
    if (!(err instanceof LvmMetadataError)) throw err;
    lv.invalid = err.detail;
    lv.segments = [];
  }
  return lv;
}

function readSegment(r: SectionReader, vg: Names): SegmentMeta {
  const [typeName, ...typeFlags] = r.str('type').split('+');
  const base: SegmentBase = {
    key: printable(r.node.key),
    startExtent: r.int('start_extent', { max: UINT32_MAX }),
    extentCount: r.int('extent_count', { min: 1, max: UINT32_MAX }),
    typeName,
    typeFlags,
  };
  switch (typeName) {
    case 'striped':
    case 'linear': {
      const count = r.int('stripe_count', { min: 1, max: LIMITS.areasPerSegment });
      const stripeSize = count > 1 ? r.int('stripe_size', { min: 1, max: UINT32_MAX }) : 0;
      if (base.extentCount % count !== 0) r.fail(`${base.extentCount} extents do not divide into ${count} stripes`);
      return { ...base, type: 'striped', stripeSize, areas: areas(r, 'stripes', count, vg) };
    }
    case 'mirror': {
      const count = r.int('mirror_count', { min: 1, max: LIMITS.areasPerSegment });
      return { ...base, type: 'mirror', areas: areas(r, 'mirrors', count, vg), log: r.optionalStr('mirror_log'), pvmove: r.has('extents_moved') };
    }
    case 'raid1':
    case 'raid0':
    case 'raid0_meta': {
      if (r.has('device_count') && r.has('stripe_count')) r.fail('only one of device_count and stripe_count may be given');
      const key = r.has('device_count') ? 'device_count' : 'stripe_count';
      const count = r.int(key, { min: 1, max: LIMITS.areasPerSegment });
      const images = raidImages(r, typeName === 'raid0' ? 'raid0_lvs' : 'raids', count, vg);
      if (typeName === 'raid1') return { ...base, type: 'raid1', images, dataOffset: r.optionalInt('data_offset', { max: UINT32_MAX }) ?? 0 };
      if (base.extentCount % count !== 0) r.fail(`${base.extentCount} extents do not divide into ${count} stripes`);
      const stripeSize = count > 1 ? r.int('stripe_size', { min: 1, max: UINT32_MAX }) : 0;
      return { ...base, type: 'raid0', stripeSize, images };
    }
    case 'thin-pool':
      return {
        ...base,
        type: 'thin-pool',
        metadata: lvName(r, 'metadata', vg),
        pool: lvName(r, 'pool', vg),
        chunkSize: r.int('chunk_size', { min: 1, max: UINT32_MAX }),
        transactionId: r.bigint('transaction_id'),
      };
    case 'thin': {
      const external = r.optionalStr('external_origin');
      if (external !== undefined) lvName(r, 'external_origin', vg);
      return {
        ...base,
        type: 'thin',
        pool: lvName(r, 'thin_pool', vg),
        deviceId: r.int('device_id', { max: 2 ** 24 - 1 }),
        transactionId: r.bigint('transaction_id'),
        externalOrigin: external,
      };
    }
    case 'snapshot': {
      if (r.has('merging_store') && r.has('cow_store')) r.fail('both cow_store and merging_store are given');
      const merging = r.has('merging_store');
      return {
        ...base,
        type: 'snapshot',
        origin: lvName(r, 'origin', vg),
        cow: lvName(r, merging ? 'merging_store' : 'cow_store', vg),
        merging,
        chunkSize: r.int('chunk_size', { min: 1, max: UINT32_MAX }),
      };
    }
    case 'zero':
      return { ...base, type: 'zero' };
    case 'error':
      return { ...base, type: 'error' };
    default:
      return { ...base, type: 'unsupported' };
  }
}

/** The name of an LV of this VG. */
function lvName(r: SectionReader, key: string, vg: Names): string {
  const name = r.str(key);
  if (!vg.lvs.has(name)) r.fail(`no logical volume ${shown(name)} in this volume group`, key);
  return name;
}

/** Areas as [name, first extent] pairs (text_import_areas). */
function areas(r: SectionReader, key: string, count: number, vg: Names): AreaRef[] {
  const items = r.list(key);
  if (!items) r.fail('missing', key);
  if (items.length !== count * 2) r.fail(`${count} areas of [name, extent] were expected, not ${items.length} values`, key);
  const out: AreaRef[] = [];
  for (let i = 0; i < items.length; i += 2) {
    const name = items[i];
    const start = items[i + 1];
    if (name.kind !== 'string') r.fail('an area must start with a volume name', key);
    if (start.kind !== 'int' || start.value < 0n || start.value > BigInt(UINT32_MAX)) r.fail(`the area of ${shown(name.value)} has no valid first extent`, key);
    if (vg.pvs.has(name.value)) out.push({ kind: 'pv', name: name.value, start: Number(start.value) });
    else if (vg.lvs.has(name.value)) out.push({ kind: 'lv', name: name.value, start: Number(start.value) });
    else r.fail(`no physical or logical volume ${shown(name.value)} in this volume group`, key);
  }
  return out;
}

/** RAID images: a list of LV names, each image preceded by its _rmeta_ LV when it has one (_raid_text_import_areas). */
function raidImages(r: SectionReader, key: string, count: number, vg: Names): string[] {
  const names = r.strings(key);
  const images: string[] = [];
  let i = 0;
  while (i < names.length && images.length < count) {
    if (names[i].includes('_rmeta_')) i++;
    if (i >= names.length) r.fail('a metadata LV without its data LV', key);
    images.push(names[i]);
    i++;
  }
  if (images.length !== count || i !== names.length) r.fail(`${count} images were expected`, key);
  for (const name of names) if (!vg.lvs.has(name)) r.fail(`no logical volume ${shown(name)} in this volume group`, key);
  return images;
}
