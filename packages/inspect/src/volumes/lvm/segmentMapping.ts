/**
 * From a VG's metadata and the PVs found on the guest's disks to LV block
 * sources: each segment becomes a target over PV extents or over the hidden
 * LVs below it (raid images, mirror legs, thin pool data), checked against
 * the PV's extent count and the device's real size, so a source never reads
 * outside what its metadata gives it.
 *
 * What cannot be mapped is an LvUnavailableError that says why in the
 * guest's terms: a PV that is on none of the disks given, a segment type
 * guestlens does not read, a segment past the end of its PV. A raid1 or
 * mirror segment is read from its first healthy leg, so one missing leg
 * does not hide the LV.
 */
import type { BlockSource } from '@guestlens/block';
import { LvmError, shown, type LvmErrorCode } from './errors.ts';
import { LIMITS, SECTOR_SIZE } from './layout.ts';
import { ConstantTarget, LinearTarget, LogicalVolumeSource, StripedTarget, type MappedSegment, type SegmentTarget } from './logicalVolumeSource.ts';
import type { AreaRef, LogicalVolumeMeta, PhysicalVolumeMeta, SegmentMeta, VolumeGroupMeta } from './vgMetadata.ts';

/** A PV of the VG and the guest device it was found on. */
export interface AttachedPv<D = unknown> {
  meta: PhysicalVolumeMeta;
  source: BlockSource;
  /** The guest device (the assembler's own handle). */
  device: D;
}

/** Why an LV cannot be read; `missing` names the PVs it needs that are absent. */
export class LvUnavailableError extends LvmError {
  constructor(
    code: LvmErrorCode,
    readonly lv: string,
    detail: string,
    readonly missing: readonly PhysicalVolumeMeta[] = [],
  ) {
    super(code, lv, detail, { data: { lv, ...(missing.length ? { missing: missing.map((m) => m.id) } : {}) } });
  }
}

/** Something that reads thin volumes of a pool (thin.ts), given to the mapper so it stays format-agnostic. */
export type ThinTargetFactory = (args: {
  lv: LogicalVolumeMeta;
  segment: Extract<SegmentMeta, { type: 'thin' }>;
  pool: LogicalVolumeMeta;
  poolSegment: Extract<SegmentMeta, { type: 'thin-pool' }>;
  /** The pool's metadata and data LVs, mapped. */
  metadata: BlockSource;
  data: BlockSource;
  externalOrigin?: BlockSource;
  name: string;
}) => SegmentTarget;

export interface MappedVolume<D> {
  source: LogicalVolumeSource;
  /** The PV its first byte is on (its "disk" in a device list). */
  firstPv?: AttachedPv<D>;
}

export class SegmentMapper<D> {
  private readonly memo = new Map<string, MappedVolume<D> | LvUnavailableError>();
  private readonly extentBytes: number;

  constructor(
    readonly vg: VolumeGroupMeta,
    /** PVs by their name in the metadata (pv0, ...), only those found. */
    readonly attached: ReadonlyMap<string, AttachedPv<D>>,
    /** How block sources of LVs are named in error messages. */
    readonly sourceName: (lv: string, firstPv?: AttachedPv<D>) => string,
    readonly thin?: ThinTargetFactory,
  ) {
    this.extentBytes = vg.extentSize * SECTOR_SIZE;
  }

  /** The block source of LV `name`, or the reason it cannot be read. */
  map(name: string): MappedVolume<D> {
    return this.mapAt(name, []);
  }

  private mapAt(name: string, stack: readonly string[]): MappedVolume<D> {
    const known = this.memo.get(name);
    if (known instanceof LvUnavailableError) throw known;
    if (known) return known;
    if (stack.includes(name)) throw this.fail(stack[0], 'EFSCORRUPTED', `its metadata is circular: ${[...stack, name].join(' -> ')}`);
    if (stack.length >= LIMITS.stackDepth) throw this.fail(stack[0], 'EFSCORRUPTED', `LVs are stacked more than ${LIMITS.stackDepth} deep below it`);
    try {
      const result = this.build(name, [...stack, name]);
      this.memo.set(name, result);
      return result;
    } catch (err) {
      if (err instanceof LvUnavailableError) this.memo.set(name, err);
      throw err;
    }
  }

  private build(name: string, stack: readonly string[]): MappedVolume<D> {
    const lv = this.vg.lvs.get(name);
    if (!lv) throw this.fail(name, 'EFSCORRUPTED', `the metadata names LV ${shown(name)}, which it does not describe`);
    if (lv.invalid) throw this.fail(name, 'EFSCORRUPTED', `its metadata cannot be used: ${lv.invalid}`);
    const size = lv.extentCount * this.extentBytes;
    if (!Number.isSafeInteger(size)) throw this.fail(name, 'EOVERFLOW', `${lv.extentCount} extents of ${this.extentBytes} bytes is beyond what guestlens supports (2^53 bytes)`);
    const segments: MappedSegment[] = [];
    let firstPv: AttachedPv<D> | undefined;
    for (const seg of lv.segments) {
      const { target, pv } = this.segmentTarget(lv, seg, stack);
      firstPv ??= pv;
      segments.push({ start: seg.startExtent * this.extentBytes, length: seg.extentCount * this.extentBytes, target });
    }
    return { source: new LogicalVolumeSource(this.sourceName(name, firstPv), size, segments), firstPv };
  }

  private segmentTarget(lv: LogicalVolumeMeta, seg: SegmentMeta, stack: readonly string[]): { target: SegmentTarget; pv?: AttachedPv<D> } {
    const where = `${seg.key} (extents ${seg.startExtent}-${seg.startExtent + seg.extentCount - 1})`;
    switch (seg.type) {
      case 'striped': {
        const perArea = seg.extentCount / seg.areas.length;
        const areas = this.allAreas(lv, seg.areas, perArea, stack);
        if (areas.length === 1) return { target: new LinearTarget(areas[0].source, areas[0].base), pv: areas[0].pv };
        return { target: this.striped(lv, where, areas, seg.stripeSize, perArea), pv: areas[0].pv };
      }
      case 'raid0': {
        const perImage = seg.extentCount / seg.images.length;
        const areas = this.allAreas(lv, seg.images.map((image) => ({ kind: 'lv', name: image, start: 0 })), perImage, stack);
        if (areas.length === 1) return { target: new LinearTarget(areas[0].source, 0), pv: areas[0].pv };
        return { target: this.striped(lv, where, areas, seg.stripeSize, perImage), pv: areas[0].pv };
      }
      case 'mirror':
        return this.oneLeg(lv, where, 'mirror', seg.areas, seg.extentCount, stack);
      case 'raid1': {
        if (seg.dataOffset > 1) throw this.fail(lv.name, 'EOPNOTSUPP', `its raid1 ${where} keeps its data at an offset in its images (data_offset ${seg.dataOffset}), which guestlens does not read`);
        const legs: AreaRef[] = seg.images.map((image) => ({ kind: 'lv', name: image, start: 0 }));
        return this.oneLeg(lv, where, 'raid1', legs, seg.extentCount, stack);
      }
      case 'zero':
      case 'error':
        return { target: new ConstantTarget(seg.type) };
      case 'thin':
        return { target: this.thinTarget(lv, seg, stack) };
      case 'thin-pool':
        throw this.fail(lv.name, 'EOPNOTSUPP', 'it is a thin pool: only the thin volumes in it hold data to read');
      case 'snapshot':
        throw this.fail(lv.name, 'EOPNOTSUPP', `it is a copy-on-write snapshot of ${this.vg.name}/${seg.origin}, which guestlens does not read`);
      case 'unsupported':
        throw this.fail(lv.name, 'EOPNOTSUPP', `its ${where} is of type ${shown(seg.typeName)}, which guestlens does not read`);
    }
  }

  private striped(lv: LogicalVolumeMeta, where: string, areas: Area<D>[], stripeSize: number, perArea: number): SegmentTarget {
    const stripeBytes = stripeSize * SECTOR_SIZE;
    // dm-stripe refuses an area that is not a whole number of chunks: so does the mapper.
    if (stripeBytes <= 0 || (perArea * this.extentBytes) % stripeBytes !== 0) {
      throw this.fail(lv.name, 'EFSCORRUPTED', `its ${where} has a stripe size of ${stripeSize} sectors, which does not divide its ${perArea} extents per stripe`);
    }
    return new StripedTarget(areas, stripeBytes);
  }

  /** Every area, or why not: every missing PV among them is named. */
  private allAreas(lv: LogicalVolumeMeta, refs: readonly AreaRef[], extents: number, stack: readonly string[]): Area<D>[] {
    const found: Area<D>[] = [];
    const missing: PhysicalVolumeMeta[] = [];
    let first: LvUnavailableError | undefined;
    for (const ref of refs) {
      try {
        found.push(this.area(lv, ref, extents, stack));
      } catch (err) {
        if (!(err instanceof LvUnavailableError)) throw err;
        first ??= err;
        for (const m of err.missing) if (!missing.includes(m)) missing.push(m);
      }
    }
    if (!first) return found;
    if (missing.length > 1) throw this.missing(lv.name, missing);
    throw first;
  }

  /** A raid1 or mirror segment: the first leg whose PVs are all here and that LVM does not mark for rebuild. */
  private oneLeg(lv: LogicalVolumeMeta, where: string, kind: string, legs: readonly AreaRef[], extents: number, stack: readonly string[]): { target: SegmentTarget; pv?: AttachedPv<D> } {
    const reasons: string[] = [];
    const missing: PhysicalVolumeMeta[] = [];
    for (const leg of legs) {
      if (leg.kind === 'lv' && this.vg.lvs.get(leg.name)?.status.has('REBUILD')) {
        reasons.push(`${leg.name} is being rebuilt`);
        continue;
      }
      try {
        const a = this.area(lv, leg, extents, stack);
        return { target: new LinearTarget(a.source, a.base), pv: a.pv };
      } catch (err) {
        if (!(err instanceof LvUnavailableError)) throw err;
        reasons.push(`${leg.name}: ${err.detail}`);
        for (const m of err.missing) if (!missing.includes(m)) missing.push(m);
      }
    }
    throw new LvUnavailableError(missing.length ? 'ENXIO' : 'EFSCORRUPTED', lv.name, `no leg of its ${kind} ${where} can be read (${reasons.join('; ')})`, missing);
  }

  /** `extents` extents of a PV or LV from the area's first extent, checked to be there. */
  private area(lv: LogicalVolumeMeta, ref: AreaRef, extents: number, stack: readonly string[]): Area<D> {
    if (ref.kind === 'lv') {
      const below = this.mapAt(ref.name, stack);
      const sub = this.vg.lvs.get(ref.name)!;
      if (ref.start + extents > sub.extentCount) {
        throw this.fail(lv.name, 'EFSCORRUPTED', `it uses extents ${ref.start}-${ref.start + extents - 1} of ${ref.name}, which has ${sub.extentCount}`);
      }
      return { source: below.source, base: ref.start * this.extentBytes, pv: below.firstPv };
    }
    const meta = this.vg.pvs.get(ref.name)!;
    const pv = this.attached.get(ref.name);
    if (!pv || meta.missing) throw this.missing(lv.name, [meta]);
    if (ref.start + extents > meta.peCount) {
      throw this.fail(lv.name, 'EFSCORRUPTED', `it uses extents ${ref.start}-${ref.start + extents - 1} of physical volume ${ref.name}, which has ${meta.peCount}`);
    }
    const base = meta.peStart * SECTOR_SIZE + ref.start * this.extentBytes;
    const end = base + extents * this.extentBytes;
    if (!Number.isSafeInteger(end)) throw this.fail(lv.name, 'EOVERFLOW', `its extents on ${ref.name} lie beyond 2^53 bytes`);
    if (end > pv.source.size) {
      throw this.fail(
        lv.name,
        'EFSCORRUPTED',
        `it uses bytes ${base}-${end - 1} of physical volume ${ref.name} (${pv.source.name}), which is only ${pv.source.size} bytes: the disk image is shorter than its volume group says`,
      );
    }
    return { source: pv.source, base, pv };
  }

  private thinTarget(lv: LogicalVolumeMeta, seg: Extract<SegmentMeta, { type: 'thin' }>, stack: readonly string[]): SegmentTarget {
    const pool = this.vg.lvs.get(seg.pool)!;
    const poolSegment = pool.segments.length === 1 && pool.segments[0].type === 'thin-pool' ? pool.segments[0] : undefined;
    if (!poolSegment) throw this.fail(lv.name, 'EFSCORRUPTED', `its pool ${seg.pool} is not a thin pool`);
    if (!this.thin) throw this.fail(lv.name, 'EOPNOTSUPP', `it is a thin volume in pool ${this.vg.name}/${seg.pool}, which guestlens does not read`);
    const metadata = this.mapAt(poolSegment.metadata, [...stack, seg.pool]).source;
    const data = this.mapAt(poolSegment.pool, [...stack, seg.pool]).source;
    const externalOrigin = seg.externalOrigin === undefined ? undefined : this.mapAt(seg.externalOrigin, stack).source;
    return this.thin({ lv, segment: seg, pool, poolSegment, metadata, data, externalOrigin, name: this.sourceName(lv.name) });
  }

  private missing(lv: string, pvs: readonly PhysicalVolumeMeta[]): LvUnavailableError {
    const names = pvs.map((m) => `${m.name} (UUID ${m.id}${m.deviceHint ? `, last seen as ${shown(m.deviceHint, 40)}` : ''}${m.missing ? ', marked missing by LVM' : ''})`);
    const which = pvs.length === 1 ? `physical volume ${names[0]}` : `physical volumes ${names.join(', ')}`;
    return new LvUnavailableError('ENXIO', lv, `it needs ${which} of volume group ${this.vg.name}, which is on none of the disks given: give every disk of the guest`, pvs);
  }

  private fail(lv: string, code: LvmErrorCode, detail: string): LvUnavailableError {
    return new LvUnavailableError(code, lv, detail);
  }
}

interface Area<D> {
  source: BlockSource;
  base: number;
  pv?: AttachedPv<D>;
}
