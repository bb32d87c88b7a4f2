/**
 * What `df` shows for one guest: one row per filesystem, with the numbers the
 * guest kernel's statfs would return. Devices that hold no filesystem (swap,
 * an LVM physical volume whose volumes are read, an unrecognised or empty
 * partition) are skipped as virt-df skips them; a filesystem that cannot be
 * read is reported, never silently dropped, and so is a guest in which
 * nothing at all was recognised.
 */
import { isRetryable } from '@guestlens/block';
import type { Guest, GuestFilesystemInfo, GuestWarning } from '../guest/guest.ts';
import type { StatFs } from '../filesystems/filesystem.ts';
import { retryWhileLive, type RetryOptions } from '../guest/retry.ts';
import { btrfsSubvolumeDevice } from '../guest/deviceName.ts';

export interface DfRow {
  device: string;
  fstype: string;
  label: string | undefined;
  uuid: string | undefined;
  statfs: StatFs;
  /** Damage the driver tolerated as the kernel's read-only mount does. */
  warnings: readonly string[];
}

/** Something that keeps the result from being complete. */
export interface DfProblem {
  device: string;
  /** What went wrong, without the image or device name. */
  message: string;
  /** The cause may be a live image caught mid-write: reading again may succeed. */
  retryable: boolean;
}

export interface GuestDf {
  rows: DfRow[];
  problems: DfProblem[];
}

/** blkid types that are not mountable filesystems: virt-df never shows them. */
const NOT_FILESYSTEMS = new Set(['swap', 'swsuspend', 'LVM2_member', 'unknown', 'jbd', 'linux_raid_member', 'crypto_LUKS']);

/**
 * Containers whose contents were not reached: skipping them hides filesystems, so they count as problems. An
 * LVM2 physical volume whose volume group was assembled is consumed (its logical volumes are listed instead);
 * one that is still here was handed back, and the assembler's warning on it says why (else this does).
 */
const UNREAD_CONTAINERS: Record<string, string> = {
  LVM2_member: 'an LVM2 physical volume whose volume group guestlens did not assemble, so filesystems on its logical volumes are missing',
  linux_raid_member: 'a Linux software-RAID member: guestlens does not assemble RAID arrays yet',
  crypto_LUKS: 'a LUKS-encrypted volume: guestlens does not decrypt volumes',
};

/** One reading of every filesystem of the guest. */
export async function guestDf(guest: Guest): Promise<GuestDf> {
  const rows: DfRow[] = [];
  const problems: DfProblem[] = [];
  const filesystems = await guest.filesystems();
  const unread = new Set(filesystems.filter((f) => !f.consumedBy && UNREAD_CONTAINERS[f.type]).map((f) => f.device));
  const warningProblem = (w: GuestWarning): DfProblem => ({ device: w.device, message: withoutPrefix(w.message, w.image), retryable: w.retryable ?? false });
  for (const w of guest.warnings) {
    // Said below, as the reason a container is unread.
    if (unread.has(w.device)) continue;
    // A disk whose partition table is unreadable, a volume that cannot be assembled: part of the guest is missing.
    const hides = guest.disks.some((d) => d.device === w.device && d.error) || !guest.disks.some((d) => d.device === w.device);
    if (hides) problems.push(warningProblem(w));
  }
  for (const fs of filesystems) {
    if (fs.consumedBy) continue;
    if (NOT_FILESYSTEMS.has(fs.type)) {
      const why = UNREAD_CONTAINERS[fs.type];
      if (!why) continue;
      const said = guest.warnings.filter((w) => w.device === fs.device);
      if (said.length > 0) problems.push(...said.map(warningProblem));
      else problems.push({ device: fs.device, message: why, retryable: false });
      continue;
    }
    try {
      rows.push(...(await statRows(fs)));
    } catch (err) {
      problems.push({ device: fs.device, message: problemText(err, fs), retryable: isRetryable(err) });
    }
  }
  if (rows.length === 0 && problems.length === 0 && filesystems.every((f) => f.type === 'unknown')) {
    const where = guest.disks.map((d) => d.image).join(', ');
    problems.push({
      device: guest.disks.length === 1 ? guest.disks[0].device : guest.disks.map((d) => d.device).join(', '),
      message: `no filesystem, partition table or volume that guestlens recognises was found in ${where} (an empty disk, or not a disk image; if it is an image in a format guestlens does not know, say which with --format)`,
      retryable: false,
    });
  }
  return { rows, problems };
}

export interface ReadDfOptions extends RetryOptions {}

/**
 * `guestDf`, read again after a refresh while the only problems are
 * retryable and the guest is live; the problems left after the last attempt
 * say that the guest was being written.
 */
export async function readGuestDf(guest: Guest, options: ReadDfOptions = {}): Promise<GuestDf & { attempts: number }> {
  const result = await retryWhileLive(guest, () => guestDf(guest), (df) => df.problems.some((p) => p.retryable), options);
  const df = result.value;
  if (result.live) {
    for (const p of df.problems) {
      if (p.retryable) p.message += ` (${result.live.reason ?? 'the image is being written'}; read ${result.attempts} times)`;
    }
  }
  return { ...df, attempts: result.attempts };
}

/**
 * The device's row and, for a filesystem with subvolumes (btrfs), one row per
 * subvolume but the default one (mounting the device shows that one), named
 * btrfsvol:DEVICE/PATH, in subvolume-id order, as virt-df lists them: it
 * mounts each and asks statvfs, which gives the whole filesystem's numbers.
 */
async function statRows(info: GuestFilesystemInfo): Promise<DfRow[]> {
  const fs = await info.open();
  const statfs = await fs.statfs();
  const row = (device: string): DfRow => ({ device, fstype: info.type, label: info.label, uuid: info.uuid, statfs, warnings: fs.fs.warnings ?? [] });
  const rows = [row(info.device)];
  const subvolumes = fs.fs.subvolumes ? await fs.fs.subvolumes() : [];
  for (const sv of subvolumes) if (!sv.isDefault) rows.push(row(btrfsSubvolumeDevice(info.device, sv.path)));
  return rows;
}

/** An error's message without the names the report already carries (the image, the device). */
function problemText(err: unknown, fs: GuestFilesystemInfo): string {
  if (!(err instanceof Error)) return String(err);
  const detail = (err as { detail?: unknown }).detail;
  if (typeof detail === 'string' && detail) return detail;
  return withoutPrefix(withoutPrefix(err.message, fs.device), fs.source.name);
}

function withoutPrefix(message: string, name: string): string {
  return message.startsWith(`${name}: `) ? message.slice(name.length + 2) : message;
}

export { isRetryable };
