/**
 * Which driver reads which probed type. Adding a filesystem is one line here
 * and a folder beside ext/; the guest API never names a driver itself.
 */
import type { BlockSource } from '@guestlens/qcow2-js';
import { UnsupportedFilesystemError } from '../errors.ts';
import type { Filesystem } from './filesystem.ts';
import { openExt } from './ext/index.ts';

export type FilesystemOpener = (source: BlockSource) => Promise<Filesystem>;

// Any image may be live (a VM writing it while we read through the overlay):
// ext opens in live mode, so a checksum mismatch is a retryable error.
const openExtLive: FilesystemOpener = (source) => openExt(source, { live: true });

const drivers: ReadonlyMap<string, FilesystemOpener> = new Map<string, FilesystemOpener>([
  ['ext2', openExtLive],
  ['ext3', openExtLive],
  ['ext4', openExtLive],
]);

/** The probed types (blkid's TYPE) guestlens can open. */
export function supportedFilesystemTypes(): string[] {
  return [...drivers.keys()];
}

export function driverFor(type: string): FilesystemOpener | undefined {
  return drivers.get(type);
}

/** Open the filesystem of probed type `type` on `source`; `device` names it in the error when no driver exists. */
export async function openFilesystem(type: string, source: BlockSource, device: string): Promise<Filesystem> {
  const open = drivers.get(type);
  if (!open) throw new UnsupportedFilesystemError(device, type);
  return open(source);
}
