/**
 * Opening a guest's file tree for the commands that read files: the mount
 * map given by -m, else the one inspection finds (the first operating
 * system's /etc/fstab), else — a data disk with one filesystem and no
 * operating system — that filesystem at "/" (virt-ls and virt-tail refuse
 * until given -m; we do what the user meant). Several filesystems and no
 * operating system: an error that says which -m to give.
 */
import type { Guest, GuestTree, OperatingSystem } from '@guestlens/inspect';
import { GuestlensError } from '@guestlens/block';
import { parseMountOption, type GuestJob } from './guestJobs.ts';
import type { BackingPolicyName } from '@guestlens/qcow2-js/policy';

export interface OpenedTree {
  guest: Guest;
  tree: GuestTree;
  /** The operating system whose mount map was used, when inspection found one. */
  os?: OperatingSystem;
  /** What could not be mounted or matched (said on stderr; exit 3 where the answer is affected). */
  problems: string[];
  close(): Promise<void>;
}

/** Types that hold no files (never mounted by the fallback). */
const NOT_FILES = new Set(['swap', 'swsuspend', 'LVM2_member', 'unknown', 'jbd', 'linux_raid_member', 'crypto_LUKS']);

export async function openTree(job: GuestJob, options: { backing?: BackingPolicyName; mount: string[] }): Promise<OpenedTree> {
  const { openGuest, GuestTree, inspectGuest, mountWhatReads } = await import('@guestlens/inspect');
  const guest = await openGuest(job.images, { backing: options.backing });
  const problems: string[] = [...job.unreadable];
  try {
    if (options.mount.length > 0) {
      const tree = await GuestTree.open(guest, options.mount.map(parseMountOption));
      return { guest, tree, problems, close: () => guest.close() };
    }
    const inspection = await inspectGuest(guest, { applications: false });
    problems.push(...inspection.problems);
    const os = inspection.operatingSystems[0];
    if (os) {
      if (inspection.operatingSystems.length > 1) {
        problems.push(`the guest has ${inspection.operatingSystems.length} operating systems (roots ${inspection.operatingSystems.map((o) => o.root).join(', ')}); reading the first, ${os.root} (give -m to choose)`);
      }
      return { guest, tree: await mountWhatReads(guest, os.mountpoints, problems), os, problems, close: () => guest.close() };
    }
    const readable = (await guest.filesystems()).filter((f) => !f.consumedBy && !NOT_FILES.has(f.type));
    if (readable.length === 1) {
      return { guest, tree: await GuestTree.open(guest, [{ device: readable[0].device, mountpoint: '/' }]), problems, close: () => guest.close() };
    }
    const list = readable.map((f) => `${f.device} (${f.type}${f.label ? ` "${f.label}"` : ''})`).join(', ');
    throw new GuestlensError(
      'ENOOS',
      `${job.name}: no operating system was found${readable.length ? `, and the guest has ${readable.length} filesystems: ${list}; say which to read with -m DEVICE[:MOUNTPOINT]` : ', and no filesystem guestlens can read'}`,
    );
  } catch (err) {
    await guest.close();
    throw err;
  }
}
