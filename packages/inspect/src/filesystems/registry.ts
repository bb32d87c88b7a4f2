/**
 * Which driver reads which probed type: one line per driver. Adding a
 * filesystem is a folder beside ext/ and a line here; the guest API never
 * names a driver itself. A driver for filesystems that span devices (btrfs)
 * says how its devices are grouped and opens them together.
 */
import type { BlockSource } from '@guestlens/block';
import { UnsupportedFilesystemError } from '../errors.ts';
import type { ProbeResult } from '../probe/result.ts';
import type { Filesystem, FilesystemOpenOptions } from './filesystem.ts';
import { EXT_TYPES } from './ext/layout.ts';
import { FAT_TYPES } from './fat/layout.ts';
import { XFS_TYPES } from './xfs/layout.ts';

export type FilesystemOpener = (source: BlockSource, options?: FilesystemOpenOptions) => Promise<Filesystem>;

export interface FilesystemDriver {
  /** blkid TYPEs this driver reads. */
  readonly types: readonly string[];
  readonly open: FilesystemOpener;
  /**
   * For filesystems on several devices: the key the devices of one
   * filesystem share (btrfs's fsid), how many devices it has, and the opener
   * over all of them (in any order).
   */
  readonly multiDevice?: {
    key(probe: ProbeResult): string | undefined;
    open(sources: BlockSource[], options?: FilesystemOpenOptions): Promise<Filesystem>;
  };
}

const ext: FilesystemDriver = {
  types: EXT_TYPES,
  open: async (source, options) => (await import('./ext/index.ts')).openExt(source, options),
};

const fat: FilesystemDriver = {
  types: FAT_TYPES,
  open: async (source, options) => (await import('./fat/index.ts')).openFat(source, options),
};

const ntfs: FilesystemDriver = {
  types: ['ntfs'],
  open: async (source, options) => (await import('./ntfs/index.ts')).openNtfs(source, options),
};

const btrfs: FilesystemDriver = {
  types: ['btrfs'],
  open: async (source, options) => (await import('./btrfs/index.ts')).openBtrfs(source, options),
  multiDevice: {
    // Devices of one btrfs share its fsid (blkid's UUID; each device's own is UUID_SUB).
    key: (probe) => (probe.type === 'btrfs' ? probe.uuid : undefined),
    open: async (sources, options) => (await import('./btrfs/index.ts')).openBtrfsDevices(sources, options),
  },
};

const xfs: FilesystemDriver = {
  types: XFS_TYPES,
  open: async (source, options) => (await import('./xfs/index.ts')).openXfs(source, options),
};

export const DRIVERS: readonly FilesystemDriver[] = [ext, xfs, fat, ntfs, btrfs];

export function driverForType(type: string): FilesystemDriver | undefined {
  return DRIVERS.find((d) => d.types.includes(type));
}

/** The probed types (blkid's TYPE) guestlens can open. */
export function supportedFilesystemTypes(): string[] {
  return DRIVERS.flatMap((d) => d.types);
}

export function driverFor(type: string): FilesystemOpener | undefined {
  return driverForType(type)?.open;
}

/** Open the filesystem of probed type `type` on `source`; `device` names it in the error when no driver exists. */
export async function openFilesystem(type: string, source: BlockSource, device: string, options: FilesystemOpenOptions = { live: true }): Promise<Filesystem> {
  const driver = driverForType(type);
  if (!driver) throw new UnsupportedFilesystemError(device, type);
  return driver.open(source, options);
}
