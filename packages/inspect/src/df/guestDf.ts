/**
 * What `df` shows for one guest: one row per filesystem, with the numbers the
 * guest kernel's statfs would return. Devices that hold no filesystem (swap,
 * an LVM physical volume, an unrecognised or empty partition) are skipped as
 * virt-df skips them; a filesystem that cannot be read is reported, never
 * silently dropped.
 */
import type { Guest, GuestFilesystemInfo } from '../guest/guest.ts';
import type { StatFs } from '../filesystems/filesystem.ts';

export interface DfRow {
  device: string;
  fstype: string;
  label: string | undefined;
  uuid: string | undefined;
  statfs: StatFs;
}

/** Something that keeps the result from being complete. */
export interface DfProblem {
  device: string;
  message: string;
  /** The cause may be a live image caught mid-write: reading again may succeed. */
  retryable: boolean;
}

export interface GuestDf {
  rows: DfRow[];
  problems: DfProblem[];
}

/** blkid types that are not mountable filesystems: virt-df never shows them. */
const NOT_FILESYSTEMS = new Set(['swap', 'LVM2_member', 'unknown', 'jbd', 'linux_raid_member', 'crypto_LUKS']);

/** Containers whose contents guestlens cannot reach yet: skipping them hides filesystems, so they count as problems. */
const UNREAD_CONTAINERS: Record<string, string> = {
  LVM2_member: 'an LVM2 physical volume: guestlens does not read LVM logical volumes yet, so filesystems on them are missing',
  linux_raid_member: 'a Linux software-RAID member: guestlens does not assemble RAID arrays yet',
  crypto_LUKS: 'a LUKS-encrypted volume: guestlens does not decrypt volumes',
};

export async function guestDf(guest: Guest): Promise<GuestDf> {
  const rows: DfRow[] = [];
  const problems: DfProblem[] = guest.warnings
    .filter((w) => guest.disks.some((d) => d.device === w.device && d.error))
    .map((w) => ({ device: w.device, message: w.message, retryable: false }));
  for (const fs of await guest.filesystems()) {
    if (NOT_FILESYSTEMS.has(fs.type)) {
      const why = UNREAD_CONTAINERS[fs.type];
      if (why) problems.push({ device: fs.device, message: why, retryable: false });
      continue;
    }
    try {
      rows.push(await statRow(fs));
    } catch (err) {
      problems.push({ device: fs.device, message: err instanceof Error ? err.message : String(err), retryable: isRetryable(err) });
    }
  }
  return { rows, problems };
}

async function statRow(info: GuestFilesystemInfo): Promise<DfRow> {
  const fs = await info.open();
  const statfs = await fs.statfs();
  return { device: info.device, fstype: info.type, label: info.label, uuid: info.uuid, statfs };
}

export function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === true;
}
