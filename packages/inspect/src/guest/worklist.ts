/**
 * Assembling a guest from its disks: a worklist over devices that can yield
 * more devices (dissect.target's disk/volume collections are the shape).
 *
 *   disks → partition tables → [assemblers over all disks at once:
 *   LVM2 physical volumes grouped by volume group → logical volumes; later
 *   LUKS, md] → devices the probe names (filesystems, swap, ...)
 *
 * A disk whose partition table holds no partitions is probed whole (a
 * filesystem with a boot loader's 0x55AA signature, as LILO leaves it: blkid
 * reports both, libguestfs reads the filesystem). An assembler that cannot go
 * on (a missing physical volume, an unknown segment type) reports what is
 * missing by name and the rest of the guest goes on.
 */
import { BlockWindow, isGuestlensError, type BlockSource } from '@guestlens/block';
import { probeFilesystem, type ProbeResult } from '../probe/index.ts';
import type { Partition, PartitionTable } from '../volumes/partition.ts';
import { diskDevice, partitionDevice, partitionSourceName } from './deviceName.ts';

export interface GuestDisk {
  /** 0 for the first image. */
  index: number;
  /** /dev/sda, /dev/sdb, ... */
  device: string;
  /** The image path as given. */
  image: string;
  format: string;
  source: BlockSource;
  /** Undefined when the table could not be read (see `error` and the guest's warnings). */
  partitionTable?: PartitionTable;
  error?: Error;
}

export interface GuestWarning {
  device: string;
  image: string;
  message: string;
  /** The cause may be a live image caught mid-write (torn volume metadata): reading again may succeed. */
  retryable?: boolean;
}

export type GuestDeviceKind = 'disk' | 'partition' | 'logical-volume';

/** A device of the guest (whole disk, partition, logical volume) and what the probe found on it. */
export interface GuestDevice {
  /** Canonical name: /dev/sda, /dev/sda1, /dev/VG/LV. */
  device: string;
  kind: GuestDeviceKind;
  /** The disk it is on; for a logical volume, the disk of its first physical volume. */
  disk: GuestDisk;
  /** Undefined for a whole disk and for logical volumes. */
  partition?: Partition;
  source: BlockSource;
  probe: ProbeResult;
  /** Set when an assembler took this device as a part of something bigger (an LVM physical volume): it holds no filesystem of its own. */
  consumedBy?: string;
  /** See AssembledDevice. */
  identity?: string;
  refreshVolume?(): void;
}

/** A device an assembler makes (the worklist probes it). */
export interface AssembledDevice {
  device: string;
  kind: GuestDeviceKind;
  disk: GuestDisk;
  source: BlockSource;
  /**
   * What the device's layout was made from (an LVM VG's id and seqno): when a
   * refresh assembles the guest again and this changed, the device is rebuilt
   * even if its name and size did not.
   */
  identity?: string;
  /**
   * Drop what the volume itself cached about where its bytes are (a thin
   * pool's block map), without refreshing the images below: a refresh that
   * keeps the devices calls this after the images were refreshed.
   */
  refreshVolume?(): void;
}

/** A step that takes devices from all disks at once and makes more devices of them (LVM: PVs → LVs). */
export interface VolumeAssembler {
  readonly name: string;
  /** Whether this step takes the device (by its probe). */
  takes(device: GuestDevice): boolean;
  /**
   * Devices made from every device taken, and what could not be made (named).
   * Every device taken arrives with `consumedBy` set; the step clears it on a
   * device it could not use (a PV whose volume group cannot be read), which
   * then stays in the guest's list as what it is, with the step's problem.
   */
  assemble(devices: GuestDevice[]): Promise<{ devices: AssembledDevice[]; problems: GuestWarning[] }>;
}

export interface AssembledGuest {
  /** Every device that is not a container, in guest order: disks and their partitions, then assembled devices by name. */
  devices: GuestDevice[];
  problems: GuestWarning[];
  /** Views the worklist made (closed with the guest). */
  windows: BlockSource[];
}

/** Bounds the rounds of assembly (LVM on md on LUKS ... is a few; a loop of assemblers is a bug or a hostile image). */
const MAX_ROUNDS = 8;

export async function assembleGuest(disks: GuestDisk[], assemblers: readonly VolumeAssembler[]): Promise<AssembledGuest> {
  const windows: BlockSource[] = [];
  const devices: GuestDevice[] = [];
  const problems: GuestWarning[] = [];
  for (const disk of disks) {
    const table = disk.partitionTable;
    if (!table) continue;
    const partitions = table.partitions.filter((p) => p.kind !== 'extended');
    if (table.scheme === 'none' || partitions.length === 0) {
      devices.push(await probed({ device: disk.device, kind: 'disk', disk, source: disk.source }));
      continue;
    }
    devices.push(
      ...(await Promise.all(
        partitions.map((p) => {
          const window = new BlockWindow(disk.source, p.offset, p.size, partitionSourceName(disk.image, p.number));
          windows.push(window);
          return probed({ device: partitionDevice(disk.index, p.number), kind: 'partition', disk, source: window }, p);
        }),
      )),
    );
  }
  let fresh = devices.slice();
  // Devices a step handed back are not offered to it again (it would only say the same again).
  const handedBack = new Map<VolumeAssembler, Set<GuestDevice>>(assemblers.map((s) => [s, new Set()]));
  for (let round = 0; round < MAX_ROUNDS && fresh.length > 0; round++) {
    const made: GuestDevice[] = [];
    for (const step of assemblers) {
      const refused = handedBack.get(step)!;
      const taken = devices.filter((d) => !d.consumedBy && !refused.has(d) && step.takes(d));
      if (taken.length === 0 || !taken.some((d) => fresh.includes(d))) continue;
      for (const d of taken) d.consumedBy = step.name;
      const result = await step.assemble(taken);
      for (const d of taken) if (!d.consumedBy) refused.add(d);
      const said = [...result.problems];
      for (const a of result.devices) {
        try {
          made.push(await probed(a));
        } catch (err) {
          // A volume that cannot even be probed (a damaged thin pool's map) is a problem of its own, not of the guest.
          if (!isGuestlensError(err)) throw err;
          const detail = (err as { detail?: unknown }).detail;
          said.push({ device: a.device, image: a.disk.image, message: typeof detail === 'string' ? detail : err.message, ...(err.retryable ? { retryable: true } : {}) });
        }
      }
      problems.push(...said.sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0)));
    }
    made.sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0));
    devices.push(...made);
    fresh = made;
  }
  return { devices, problems, windows };
}

async function probed(d: AssembledDevice, partition?: Partition): Promise<GuestDevice> {
  const probe = await probeFilesystem(d.source);
  return { ...d, partition, probe };
}
