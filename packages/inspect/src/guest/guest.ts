/**
 * A guest: one or several disk images, in the order given, seen as the guest
 * sees them: /dev/sda, /dev/sdb, ... with their partitions, the volumes
 * assembled from them (worklist.ts) and what each device holds.
 *
 * Live images: `refresh()` re-reads everything from the bottom up (each
 * image once, its qcow2 tables included; then partition tables and volumes;
 * then every open filesystem), so no layer reads through a stale one.
 * `liveness()` tells whether the images are being written (a QEMU writer by
 * its locks, or a change since they were opened): only then are torn reads
 * worth retrying (see retry.ts).
 */
import type { BlockSource } from '@guestlens/block';
import { openFilesystem } from '../filesystems/registry.ts';
import { PartitionTableError } from '../errors.ts';
import type { ProbeResult } from '../probe/index.ts';
import { readPartitionTable } from '../volumes/partitionTable.ts';
import type { Partition } from '../volumes/partition.ts';
import { diskDevice } from './deviceName.ts';
import { GuestFilesystem } from './guestFilesystem.ts';
import { openImageDefault, type BackingPolicy, type ImageOpener, type ImageSpec, type OpenedImage } from './imageOpener.ts';
import { checkAll, LivenessWatch, type Liveness } from './liveness.ts';
import { assembleGuest, type AssembledGuest, type GuestDevice, type GuestDeviceKind, type GuestDisk, type GuestWarning, type VolumeAssembler } from './worklist.ts';
import { VOLUME_ASSEMBLERS } from './assemblers.ts';

export type { GuestDisk, GuestWarning, GuestDevice, GuestDeviceKind } from './worklist.ts';

export type GuestImageArg = string | ImageSpec;

export interface OpenGuestOptions {
  /** Read each image through a throw-away overlay (default true); false for images nobody else holds. */
  overlay?: boolean;
  /** Logical sector size for MBR disks whose spec does not say (default 512). */
  sectorSize?: number;
  /** Which files an image may name besides itself (backing files, data files): 'allow' (default), 'same-dir' or 'none'. */
  backing?: BackingPolicy;
  /** Where overlays are made (default: the system temporary directory). */
  overlayDir?: string;
  /** How an image becomes a block source (tests, or callers with their own sources). */
  openImage?: ImageOpener;
  /** The volume assemblers (default: every one guestlens has). */
  assemblers?: readonly VolumeAssembler[];
}

/** A device of the guest and what the probe found on it; `open()` reads its filesystem. */
export interface GuestFilesystemInfo {
  device: string;
  kind: GuestDeviceKind;
  /** The disk it is on (for a logical volume, the disk of its first physical volume). */
  disk: GuestDisk;
  /** Undefined for a whole disk and for logical volumes. */
  partition?: Partition;
  /** blkid's TYPE: ext4, xfs, vfat, swap, LVM2_member, ..., or 'unknown'. */
  type: string;
  label?: string;
  uuid?: string;
  /** Bytes. */
  size: number;
  /** Everything the probe said (version, blkid's USAGE, ...). */
  probe: ProbeResult;
  source: BlockSource;
  /** Set when the device is part of an assembled volume (an LVM physical volume): it holds no filesystem of its own. */
  consumedBy?: string;
  /** Open the filesystem for reading; rejects with UnsupportedFilesystemError when guestlens has no driver for `type`. */
  open(): Promise<GuestFilesystem>;
}

/** What a refresh found. */
export interface RefreshResult {
  /** The partition tables or volumes changed: the device list was rebuilt and open filesystems were closed. */
  devicesChanged: boolean;
}

export class Guest {
  private assembled?: Promise<AssembledGuest>;
  private opened = new Map<string, Promise<GuestFilesystem>>();
  private closed = false;
  private readonly watches: LivenessWatch[];

  private constructor(
    readonly disks: GuestDisk[],
    private readonly images: OpenedImage[],
    /** Damage that was worked around or that hides part of the guest (a disk whose partition table is unreadable, a missing physical volume). */
    readonly warnings: GuestWarning[],
    private readonly assemblers: readonly VolumeAssembler[],
    private readonly sectorSizes: (number | undefined)[],
  ) {
    this.watches = images.flatMap((i) => (i.path ? [new LivenessWatch(i.path)] : []));
  }

  static async open(images: GuestImageArg[], options: OpenGuestOptions = {}): Promise<Guest> {
    if (images.length === 0) throw new RangeError('openGuest needs at least one image');
    const opener = options.openImage ?? openImageDefault;
    const overlay = options.overlay ?? true;
    const opened: OpenedImage[] = [];
    const disks: GuestDisk[] = [];
    const warnings: GuestWarning[] = [];
    const sectorSizes: (number | undefined)[] = [];
    try {
      for (const [index, arg] of images.entries()) {
        const spec: ImageSpec = typeof arg === 'string' ? { path: arg } : arg;
        const image = await opener(spec, { overlay, backing: options.backing, overlayDir: options.overlayDir });
        opened.push(image);
        const disk: GuestDisk = { index, device: diskDevice(index), image: spec.path, format: image.format, source: image.source };
        sectorSizes.push(spec.sectorSize ?? options.sectorSize);
        await readTable(disk, sectorSizes[index], warnings);
        disks.push(disk);
      }
    } catch (err) {
      await Promise.allSettled(opened.map((i) => i.close()));
      throw err;
    }
    return new Guest(disks, opened, warnings, options.assemblers ?? VOLUME_ASSEMBLERS, sectorSizes);
  }

  /**
   * Every device that can hold a filesystem, in guest order: a whole disk
   * without a partition table (or with an empty one), else its partitions
   * (extended partitions, which hold only the chain of logical ones, are left
   * out), then assembled volumes by name; each with its probe.
   */
  filesystems(): Promise<GuestFilesystemInfo[]> {
    this.requireOpen();
    return this.assemble().then((a) => a.devices.map((d) => this.info(d)));
  }

  /** The entry for one device (/dev/sda1, /dev/VG/LV), or undefined. */
  async filesystem(device: string): Promise<GuestFilesystemInfo | undefined> {
    return (await this.filesystems()).find((f) => f.device === device);
  }

  /** Whether the images are being written while we read (see liveness.ts). */
  liveness(): Promise<Liveness> {
    return checkAll(this.watches);
  }

  /**
   * Re-read what a running guest may have changed, bottom up: each image
   * once (qcow2 header, L1 and cached L2 tables), then partition tables and
   * volumes, then every open filesystem. When the devices changed (a new
   * partition table, resized volumes), the device list is rebuilt and open
   * filesystems are dropped: callers open them again by device name.
   */
  async refresh(): Promise<RefreshResult> {
    this.requireOpen();
    for (const image of this.images) await image.source.refresh();
    const before = this.assembled ? fingerprint(await this.assembled.catch(() => undefined)) : undefined;
    this.warnings.splice(0);
    for (const [i, disk] of this.disks.entries()) {
      disk.partitionTable = undefined;
      disk.error = undefined;
      await readTable(disk, this.sectorSizes[i], this.warnings);
    }
    const old = this.assembled;
    this.assembled = undefined;
    const now = await this.assemble();
    if (before !== undefined && before === fingerprint(now)) {
      // Same devices: keep the open filesystems, refreshed; keep the old views (the filesystems read through them).
      const stale = now;
      await Promise.allSettled(stale.windows.map((w) => w.close()));
      this.assembled = old;
      const kept = await old?.catch(() => undefined);
      for (const d of kept?.devices ?? []) d.refreshVolume?.();
      for (const p of this.opened.values()) {
        const fs = await p.catch(() => undefined);
        await fs?.refresh();
      }
      return { devicesChanged: false };
    }
    const previous = await old?.catch(() => undefined);
    if (previous) await Promise.allSettled(previous.windows.map((w) => w.close()));
    this.opened = new Map();
    return { devicesChanged: before !== undefined };
  }

  /** Close every filesystem's source and every image (and its overlay). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const assembled = await this.assembled?.catch(() => undefined);
    if (assembled) await Promise.allSettled(assembled.windows.map((s) => s.close()));
    const results = await Promise.allSettled(this.images.map((i) => i.close()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private assemble(): Promise<AssembledGuest> {
    if (!this.assembled) {
      const p = assembleGuest(this.disks, this.assemblers).then((a) => {
        this.warnings.push(...a.problems);
        return a;
      });
      this.assembled = p;
      // A failure is not cached: a live image may read consistently next time.
      p.catch(() => {
        if (this.assembled === p) this.assembled = undefined;
      });
    }
    return this.assembled;
  }

  private info(d: GuestDevice): GuestFilesystemInfo {
    return {
      device: d.device,
      kind: d.kind,
      disk: d.disk,
      partition: d.partition,
      type: d.probe.type,
      label: d.probe.label,
      uuid: d.probe.uuid,
      size: d.source.size,
      probe: d.probe,
      source: d.source,
      consumedBy: d.consumedBy,
      open: () => this.openOne(d.device, d.probe.type, d.source),
    };
  }

  private openOne(device: string, type: string, source: BlockSource): Promise<GuestFilesystem> {
    this.requireOpen();
    let p = this.opened.get(device);
    if (!p) {
      // Any image may be live: drivers open in live mode (damage is retryable; retry.ts decides whether to).
      p = openFilesystem(type, source, device, { live: true }).then((fs) => new GuestFilesystem(fs, device));
      this.opened.set(device, p);
      // A failure is not cached: the image may be live and the next try may see consistent metadata.
      p.catch(() => {
        if (this.opened.get(device) === p) this.opened.delete(device);
      });
    }
    return p;
  }

  private requireOpen(): void {
    if (this.closed) throw new Error('this guest has been closed');
  }
}

async function readTable(disk: GuestDisk, sectorSize: number | undefined, warnings: GuestWarning[]): Promise<void> {
  try {
    disk.partitionTable = await readPartitionTable(disk.source, { sectorSize });
    for (const message of disk.partitionTable.warnings) warnings.push({ device: disk.device, image: disk.image, message });
  } catch (err) {
    if (!(err instanceof PartitionTableError)) throw err;
    disk.error = err;
    warnings.push({ device: disk.device, image: disk.image, message: err.message });
  }
}

/** What identifies the device layout: names, kinds, types, sizes and where each sits. */
function fingerprint(a: AssembledGuest | undefined): string | undefined {
  if (!a) return undefined;
  return JSON.stringify(a.devices.map((d) => [d.device, d.kind, d.probe.type, d.probe.uuid, d.source.size, d.partition?.offset, d.identity]));
}

/** Open one or several images as one guest (disks in the order given: /dev/sda, /dev/sdb, ...). */
export function openGuest(images: GuestImageArg[], options?: OpenGuestOptions): Promise<Guest> {
  return Guest.open(images, options);
}

/** Open a guest, run `fn`, and close the guest whatever happens. */
export async function withGuest<T>(images: GuestImageArg[], fn: (guest: Guest) => Promise<T>, options?: OpenGuestOptions): Promise<T> {
  const guest = await openGuest(images, options);
  try {
    return await fn(guest);
  } finally {
    await guest.close();
  }
}
