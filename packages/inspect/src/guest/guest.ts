/**
 * A guest: one or several disk images, in the order given, seen as the guest
 * sees them: /dev/sda, /dev/sdb, ... with their partitions and what each
 * holds.
 */
import type { BlockSource } from '@guestlens/qcow2-js';
import { openFilesystem } from '../filesystems/registry.ts';
import { PartitionTableError } from '../errors.ts';
import { probeFilesystem, type ProbeResult } from '../probe/index.ts';
import { readPartitionTable } from '../volumes/partitionTable.ts';
import type { Partition, PartitionTable } from '../volumes/partition.ts';
import { partitionSourceName, SliceSource } from '../volumes/slice.ts';
import { diskDevice, partitionDevice } from './deviceName.ts';
import { GuestFilesystem } from './guestFilesystem.ts';
import { openImageDefault, type BackingPolicy, type ImageOpener, type ImageSpec, type OpenedImage } from './imageOpener.ts';

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
}

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
}

/** A device of the guest (whole disk or partition) and what the probe found on it. */
export interface GuestFilesystemInfo {
  device: string;
  disk: GuestDisk;
  /** Undefined for a whole disk without a partition table. */
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
  /** Open the filesystem for reading; rejects with UnsupportedFilesystemError when guestlens has no driver for `type`. */
  open(): Promise<GuestFilesystem>;
}

export class Guest {
  private filesystemList?: Promise<GuestFilesystemInfo[]>;
  private readonly opened = new Map<string, Promise<GuestFilesystem>>();
  private readonly slices: SliceSource[] = [];
  private closed = false;

  private constructor(
    readonly disks: GuestDisk[],
    private readonly images: OpenedImage[],
    /** Damage that was worked around or that hides part of the guest (a disk whose partition table is unreadable). */
    readonly warnings: GuestWarning[],
  ) {}

  static async open(images: GuestImageArg[], options: OpenGuestOptions = {}): Promise<Guest> {
    if (images.length === 0) throw new RangeError('openGuest needs at least one image');
    const opener = options.openImage ?? openImageDefault;
    const overlay = options.overlay ?? true;
    const opened: OpenedImage[] = [];
    const disks: GuestDisk[] = [];
    const warnings: GuestWarning[] = [];
    try {
      for (const [index, arg] of images.entries()) {
        const spec: ImageSpec = typeof arg === 'string' ? { path: arg } : arg;
        const image = await opener(spec, { overlay, backing: options.backing, overlayDir: options.overlayDir });
        opened.push(image);
        const disk: GuestDisk = { index, device: diskDevice(index), image: spec.path, format: image.format, source: image.source };
        try {
          disk.partitionTable = await readPartitionTable(image.source, { sectorSize: spec.sectorSize ?? options.sectorSize });
          for (const message of disk.partitionTable.warnings) warnings.push({ device: disk.device, image: spec.path, message });
        } catch (err) {
          if (!(err instanceof PartitionTableError)) throw err;
          disk.error = err;
          warnings.push({ device: disk.device, image: spec.path, message: err.message });
        }
        disks.push(disk);
      }
    } catch (err) {
      await Promise.allSettled(opened.map((i) => i.close()));
      throw err;
    }
    return new Guest(disks, opened, warnings);
  }

  /**
   * Every device that can hold a filesystem, in guest order: a whole disk
   * without a partition table, else its partitions (extended partitions, which
   * hold only the chain of logical ones, are left out); each with its probe.
   */
  filesystems(): Promise<GuestFilesystemInfo[]> {
    this.requireOpen();
    this.filesystemList ??= this.probeAll();
    return this.filesystemList;
  }

  /** The entry for one device (/dev/sda1), or undefined. */
  async filesystem(device: string): Promise<GuestFilesystemInfo | undefined> {
    return (await this.filesystems()).find((f) => f.device === device);
  }

  /** Close every filesystem's source and every image (and its overlay). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled(this.slices.map((s) => s.close()));
    const results = await Promise.allSettled(this.images.map((i) => i.close()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async probeAll(): Promise<GuestFilesystemInfo[]> {
    const all: GuestFilesystemInfo[] = [];
    for (const disk of this.disks) {
      const table = disk.partitionTable;
      if (!table) continue;
      if (table.scheme === 'none') {
        all.push(await this.describe(disk.device, disk, undefined, disk.source));
        continue;
      }
      const entries = await Promise.all(
        table.partitions
          .filter((p) => p.kind !== 'extended')
          .map((p) => {
            const slice = new SliceSource(disk.source, p.offset, p.size, partitionSourceName(disk.image, p.number));
            this.slices.push(slice);
            return this.describe(partitionDevice(disk.index, p.number), disk, p, slice);
          }),
      );
      all.push(...entries);
    }
    return all;
  }

  private async describe(device: string, disk: GuestDisk, partition: Partition | undefined, source: BlockSource): Promise<GuestFilesystemInfo> {
    const probe = await probeFilesystem(source);
    return {
      device,
      disk,
      partition,
      type: probe.type,
      label: probe.label,
      uuid: probe.uuid,
      size: source.size,
      probe,
      source,
      open: () => this.openOne(device, probe.type, source),
    };
  }

  private openOne(device: string, type: string, source: BlockSource): Promise<GuestFilesystem> {
    this.requireOpen();
    let p = this.opened.get(device);
    if (!p) {
      p = openFilesystem(type, source, device).then((fs) => new GuestFilesystem(fs, device));
      this.opened.set(device, p);
      // A failure is not cached: the image may be live and the next try may see consistent metadata.
      p.catch(() => this.opened.delete(device));
    }
    return p;
  }

  private requireOpen(): void {
    if (this.closed) throw new Error('this guest has been closed');
  }
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
