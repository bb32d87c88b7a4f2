/**
 * LVM2 as a step of the guest's worklist: every device the probe calls an
 * LVM2_member, from all the guest's disks at once, is read for its label and
 * metadata areas; the copies are grouped by VG id and the highest seqno wins
 * (an older copy on a PV that missed an update is ignored, as LVM ignores
 * it). The public LVs of each VG become devices named /dev/VG/LV, as
 * libguestfs lists them (`lvs -S 'lv_role=public && lv_skip_activation!=yes'`).
 *
 * What cannot be read is said by name and the rest goes on: an LV on a PV
 * that is on none of the disks given, an LV of a type guestlens does not
 * read, a VG whose copies disagree; a PV whose VG cannot be made out at all
 * (its only copy torn, or no copy on the disks given) is handed back
 * unconsumed, with the reason, so the guest report still shows it.
 */
import { isGuestlensError } from '@guestlens/block';
import { lvDevice } from '../../guest/deviceName.ts';
import type { AssembledDevice, GuestDevice, GuestWarning, VolumeAssembler } from '../../guest/worklist.ts';
import { ConfigTextError, parseConfigText } from './configText.ts';
import { LvmError, LvmMetadataError } from './errors.ts';
import { readPvLabel, type PvLabel } from './label.ts';
import { readMetadataText, type MetadataText } from './metadataArea.ts';
import { LvUnavailableError, SegmentMapper, type AttachedPv } from './segmentMapping.ts';
import { thinTargets } from './thin.ts';
import { readVolumeGroup, type LogicalVolumeMeta, type VolumeGroupMeta } from './vgMetadata.ts';

interface ScannedPv {
  device: GuestDevice;
  label?: PvLabel;
  copies: MetadataCopy[];
  /** Copies that could not be read (torn, damaged). */
  failures: LvmError[];
}

interface MetadataCopy {
  vg: VolumeGroupMeta;
  text: MetadataText;
  pv: ScannedPv;
}

export interface Lvm2AssemblerOptions {
  /** Read thin volumes through their pool's btree (default true); false names them as unreadable. */
  thin?: boolean;
}

export class Lvm2Assembler implements VolumeAssembler {
  readonly name = 'lvm2';

  constructor(private readonly options: Lvm2AssemblerOptions = {}) {}

  takes(device: GuestDevice): boolean {
    return device.probe.type === 'LVM2_member';
  }

  async assemble(devices: GuestDevice[]): Promise<{ devices: AssembledDevice[]; problems: GuestWarning[] }> {
    const scanned = await Promise.all(devices.map((d) => scan(d)));
    const problems: GuestWarning[] = [];
    const made: AssembledDevice[] = [];
    /** PVs some VG was assembled from (or at least named): the rest are handed back. */
    const used = new Set<ScannedPv>();

    const groups = new Map<string, MetadataCopy[]>();
    for (const pv of scanned) for (const c of pv.copies) groups.set(c.vg.id, [...(groups.get(c.vg.id) ?? []), c]);
    const names = new Map<string, string>();
    for (const [id, copies] of groups) {
      const seqno = Math.max(...copies.map((c) => c.vg.seqno));
      const newest = copies.filter((c) => c.vg.seqno === seqno);
      const vg = newest[0].vg;
      const members = scanned.filter((pv) => [...vg.pvs.values()].some((m) => m.id === pv.label?.pvUuid));
      for (const c of copies) used.add(c.pv);
      for (const pv of members) used.add(pv);
      const other = names.get(vg.name);
      if (other !== undefined) {
        // Two VGs by one name (two guests' disks given together): LVM refuses the second, and /dev/VG/LV could name either.
        for (const pv of members) {
          pv.device.consumedBy = undefined;
          problems.push(pvProblem(pv, `its volume group ${vg.name} (id ${id}) has the name of another volume group (id ${other}) of this guest: its logical volumes are not listed`));
        }
        continue;
      }
      names.set(vg.name, id);
      const disagreeing = newest.find((c) => !c.text.text.equals(newest[0].text.text));
      if (disagreeing) {
        const lvNames = new Set<string>();
        for (const copy of [newest[0].vg, disagreeing.vg]) {
          const snapshots = snapshotsOf(copy);
          for (const lv of copy.lvs.values()) if (isPublic(copy, lv, snapshots)) lvNames.add(lv.name);
        }
        const detail =
          `the metadata copies of volume group ${vg.name} disagree: ${newest[0].pv.device.device} and ${disagreeing.pv.device.device} both hold seqno ${seqno} ` +
          'with different contents, so guestlens cannot tell which is right (vgck on a copy of the disks tells more)';
        for (const name of [...lvNames].sort()) problems.push({ device: lvDevice(vg.name, name), image: newest[0].pv.device.disk.image, message: detail });
        continue;
      }
      this.assembleGroup(vg, members, made, problems);
    }

    for (const pv of scanned) {
      if (used.has(pv)) continue;
      const reason = unassembledReason(pv);
      if (reason === undefined) continue; // a PV in no VG: nothing on it to read
      pv.device.consumedBy = undefined;
      problems.push(pvProblem(pv, reason.message, reason.retryable));
    }
    // In device-name order, as the devices are listed.
    problems.sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0));
    return { devices: made, problems };
  }

  private assembleGroup(vg: VolumeGroupMeta, members: ScannedPv[], made: AssembledDevice[], problems: GuestWarning[]): void {
    const attached = new Map<string, AttachedPv<GuestDevice>>();
    for (const meta of vg.pvs.values()) {
      const holders = members.filter((pv) => pv.label?.pvUuid === meta.id);
      if (holders.length === 0) continue;
      attached.set(meta.name, { meta, source: holders[0].device.source, device: holders[0].device });
      for (const dup of holders.slice(1)) {
        // A cloned disk given twice: LVM would pick one too; the other is said, not read.
        dup.device.consumedBy = undefined;
        problems.push(pvProblem(dup, `it has the UUID of physical volume ${meta.name} of volume group ${vg.name}, which is also ${holders[0].device.device}: this one is not read`));
      }
    }
    const fallbackDisk = members[0].device.disk;
    const thin = this.options.thin === false ? undefined : thinTargets(vg.name);
    const mapper = new SegmentMapper<GuestDevice>(vg, attached, (lv, first) => `${(first?.device.disk ?? fallbackDisk).image} logical volume ${vg.name}/${lv}`, thin);
    const snapshots = snapshotsOf(vg);
    for (const lv of vg.lvs.values()) {
      if (!isPublic(vg, lv, snapshots) || (vg.lockType === 'sanlock' && lv.name === 'lvmlock')) continue;
      const device = lvDevice(vg.name, lv.name);
      const image = diskOf(lv, attached)?.image ?? fallbackDisk.image;
      const snapshot = snapshots.byCow.get(lv.name);
      if (snapshot) {
        const origin = vg.lvs.get(snapshot.origin);
        const reads = origin?.status.has('VISIBLE') ? ` (the origin ${lvDevice(vg.name, snapshot.origin)} is read as it is now)` : '';
        problems.push({ device, image, message: `it is a copy-on-write snapshot of ${vg.name}/${snapshot.origin}, which guestlens does not read${reads}` });
        continue;
      }
      const merging = snapshots.mergingInto.get(lv.name);
      if (merging !== undefined) {
        problems.push({ device, image, message: `the snapshot ${vg.name}/${merging} is being merged into it, and guestlens does not read a volume half-way through a merge` });
        continue;
      }
      try {
        const mapped = mapper.map(lv.name);
        const source = mapped.source;
        made.push({
          device,
          kind: 'logical-volume',
          disk: mapped.firstPv?.device.disk ?? fallbackDisk,
          source,
          // Any change of the VG's metadata (a new seqno) may move the LV's extents: the guest rebuilds it.
          identity: `${vg.id}:${vg.seqno}:${lv.id}`,
          refreshVolume: () => source.dropCaches(),
        });
      } catch (err) {
        if (!(err instanceof LvUnavailableError)) throw err;
        problems.push({ device, image, message: err.detail });
      }
    }
  }
}

interface Snapshots {
  /** The snapshot segment that names each COW LV. */
  byCow: Map<string, { origin: string; merging: boolean }>;
  /** Origins a snapshot is being merged into, and that snapshot. */
  mergingInto: Map<string, string>;
}

function snapshotsOf(vg: VolumeGroupMeta): Snapshots {
  const s: Snapshots = { byCow: new Map(), mergingInto: new Map() };
  for (const lv of vg.lvs.values()) {
    for (const seg of lv.segments) {
      if (seg.type !== 'snapshot') continue;
      s.byCow.set(seg.cow, { origin: seg.origin, merging: seg.merging });
      if (seg.merging) s.mergingInto.set(seg.origin, seg.cow);
    }
  }
  return s;
}

/**
 * lv_is_visible(): the hidden "snapshotN" LV holding a snapshot segment is
 * never shown; its COW LV is shown when its origin is (or the origin is a
 * virtual one), unless it is being merged; others by their VISIBLE flag.
 */
function isVisible(vg: VolumeGroupMeta, lv: LogicalVolumeMeta, snapshots: Snapshots, depth = 0): boolean {
  if (lv.segments.some((s) => s.type === 'snapshot')) return false;
  const cow = snapshots.byCow.get(lv.name);
  if (cow) {
    const origin = vg.lvs.get(cow.origin);
    if (!origin || cow.merging || depth > 1) return false;
    return !origin.status.has('VISIBLE') || isVisible(vg, origin, snapshots, depth + 1);
  }
  return lv.status.has('VISIBLE');
}

/** lv_role=public && lv_skip_activation!=yes: visible, and not a pool (thin, cache, VDO pools are visible but private). */
function isPublic(vg: VolumeGroupMeta, lv: LogicalVolumeMeta, snapshots: Snapshots): boolean {
  if (!isVisible(vg, lv, snapshots)) return false;
  if (lv.status.has('ACTIVATION_SKIP') || lv.flags.has('ACTIVATION_SKIP')) return false;
  const type = lv.segments[0]?.typeName;
  return type !== 'thin-pool' && type !== 'cache-pool' && type !== 'vdo-pool';
}

/** The guest disk of the first PV an LV's first segment names, found or not (for naming the image in a message). */
function diskOf(lv: LogicalVolumeMeta, attached: ReadonlyMap<string, AttachedPv<GuestDevice>>): GuestDevice['disk'] | undefined {
  const seg = lv.segments[0];
  const area = seg && (seg.type === 'striped' || seg.type === 'mirror') ? seg.areas[0] : undefined;
  return area?.kind === 'pv' ? attached.get(area.name)?.device.disk : [...attached.values()][0]?.device.disk;
}

async function scan(device: GuestDevice): Promise<ScannedPv> {
  const pv: ScannedPv = { device, copies: [], failures: [] };
  try {
    pv.label = await readPvLabel(device.source);
  } catch (err) {
    pv.failures.push(asLvmError(err, device));
    return pv;
  }
  for (const area of pv.label?.metadataAreas ?? []) {
    try {
      const text = await readMetadataText(device.source, area);
      if (!text) continue;
      pv.copies.push({ vg: parseCopy(text, device), text, pv });
    } catch (err) {
      pv.failures.push(asLvmError(err, device));
    }
  }
  return pv;
}

function parseCopy(text: MetadataText, device: GuestDevice): VolumeGroupMeta {
  const where = `${device.source.name}, metadata area at ${text.areaOffset}`;
  try {
    return readVolumeGroup(parseConfigText(text.text.toString('latin1')), where);
  } catch (err) {
    if (err instanceof ConfigTextError) throw new LvmMetadataError(where, `line ${err.line} (byte ${err.byte})`, err.reason);
    throw err;
  }
}

/** Errors of the image below (a damaged qcow2 table) are reported like our own; anything else is a bug. */
function asLvmError(err: unknown, device: GuestDevice): LvmError {
  if (err instanceof LvmError) return err;
  if (isGuestlensError(err)) return new LvmError('EIO', device.source.name, err.message, { retryable: err.retryable });
  throw err;
}

/** Why a PV's VG could not be made out, or undefined for a PV that is in no VG. */
function unassembledReason(pv: ScannedPv): { message: string; retryable: boolean } | undefined {
  if (pv.failures.length > 0) {
    const f = pv.failures[0];
    return { message: `an LVM2 physical volume whose volume group cannot be read: ${f.detail}`, retryable: pv.failures.every((e) => e.retryable) };
  }
  if (pv.label && pv.label.metadataAreas.length === 0) {
    return {
      message:
        `an LVM2 physical volume (UUID ${pv.label.pvUuid}) that holds no copy of its volume group's metadata: ` +
        'the physical volumes that do are on none of the disks given, so its logical volumes are missing: give every disk of the guest',
      retryable: false,
    };
  }
  return undefined;
}

function pvProblem(pv: ScannedPv, message: string, retryable = false): GuestWarning {
  return { device: pv.device.device, image: pv.device.disk.image, message, ...(retryable ? { retryable } : {}) };
}
