/**
 * Guest inspection: the operating systems of a guest (virt-inspector's job).
 * Every readable filesystem is looked at; one with a Linux /etc or a
 * Windows\System32 is a root. A Linux root's /etc/fstab gives the mount map,
 * and the facts are read through the guest's tree as the guest would mount
 * it (os-release may live on a separate /usr). What cannot be read or
 * matched is reported in `problems`, never fatal.
 */
import type { Guest, GuestFilesystemInfo } from '../guest/guest.ts';
import { GuestTree, type MountSpec } from '../guest/guestTree.ts';
import type { FileTree } from '../guest/guestFilesystem.ts';
import { mountMapFromFstab, parseFstab, type MountMapEntry, type UnmatchedEntry } from './fstab.ts';
import { isLinuxRoot, linuxFacts, readText } from './linux.ts';
import type { Application } from './packages/application.ts';
import { readWindowsFacts, windowsSystemRoot } from './windows.ts';

export interface OperatingSystem {
  /** The device of the root filesystem. */
  root: string;
  type: 'linux' | 'windows';
  distro: string;
  productName?: string;
  majorVersion: number;
  minorVersion: number;
  arch?: string;
  hostname?: string;
  machineId?: string;
  osinfo?: string;
  packageFormat?: string;
  packageManagement?: string;
  windowsSystemroot?: string;
  /** "Client", "Server": the registry's InstallationType (virt-inspector's product_variant). */
  productVariant?: string;
  windowsCurrentControlSet?: string;
  /** Drive letters the registry maps to the guest's partitions. */
  driveMappings?: { letter: string; device: string }[];
  /** What the guest mounts where (root first). */
  mountpoints: MountMapEntry[];
  /** fstab entries that name no device of the guest. */
  unmatchedFstab: UnmatchedEntry[];
  applications: Application[];
  /** Why the application list is missing or incomplete. */
  applicationsProblem?: string;
}

export interface FilesystemSummary {
  device: string;
  type: string;
  label?: string;
  uuid?: string;
  size: number;
}

export interface GuestInspection {
  operatingSystems: OperatingSystem[];
  filesystems: FilesystemSummary[];
  problems: string[];
}

/** blkid types that hold no files. */
const NOT_FILES = new Set(['swap', 'swsuspend', 'LVM2_member', 'unknown', 'jbd', 'linux_raid_member', 'crypto_LUKS']);

export interface InspectOptions {
  /** Read the package database (default true; a path lookup needs only the mount map). */
  applications?: boolean;
}

export async function inspectGuest(guest: Guest, options: InspectOptions = {}): Promise<GuestInspection> {
  const all = await guest.filesystems();
  const problems: string[] = [];
  const operatingSystems: OperatingSystem[] = [];
  const candidates = all.filter((f) => !f.consumedBy && !NOT_FILES.has(f.type));
  for (const info of candidates) {
    let root;
    try {
      root = await info.open();
    } catch (err) {
      problems.push(`${info.device}: ${err instanceof Error ? err.message.replace(`${info.device}: `, '') : String(err)}`);
      continue;
    }
    try {
      if (await isLinuxRoot(root)) operatingSystems.push(await inspectLinux(guest, info, root, all, problems, options));
      else {
        const systemroot = await windowsSystemRoot(root);
        if (systemroot) operatingSystems.push(await inspectWindows(info, root, systemroot, all, problems, options));
      }
    } catch (err) {
      problems.push(`${info.device}: inspection failed: ${err instanceof Error ? err.message : String(err)}`);
      if (process.env.GUESTLENS_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    }
  }
  const filesystems = all
    .filter((f) => !f.consumedBy && f.type !== 'unknown')
    .map((f) => ({ device: f.device, type: f.type, ...(f.label ? { label: f.label } : {}), ...(f.uuid ? { uuid: f.uuid } : {}), size: f.size }));
  return { operatingSystems, filesystems, problems };
}

async function inspectLinux(guest: Guest, info: GuestFilesystemInfo, root: FileTree, all: GuestFilesystemInfo[], problems: string[], options: InspectOptions): Promise<OperatingSystem> {
  const fstab = await readText(root, '/etc/fstab');
  const { mounts, unmatched } = mountMapFromFstab(fstab === undefined ? [] : parseFstab(fstab), { filesystems: all, rootDevice: info.device });
  for (const u of unmatched) problems.push(`${info.device}:/etc/fstab line ${u.entry.line}: ${u.entry.spec} (${u.entry.mountpoint}): ${u.reason}`);
  const tree = await mountWhatReads(guest, mounts, problems);
  const facts = await linuxFacts(tree, { applications: options.applications ?? true });
  if (facts.applications.problem) problems.push(`${info.device}: ${facts.applications.problem}`);
  return {
    root: info.device,
    type: 'linux',
    distro: facts.distro,
    productName: facts.productName,
    majorVersion: facts.majorVersion,
    minorVersion: facts.minorVersion,
    arch: facts.arch,
    hostname: facts.hostname,
    machineId: facts.machineId,
    osinfo: facts.osinfo,
    packageFormat: facts.packageFormat,
    packageManagement: facts.packageManagement,
    mountpoints: mounts,
    unmatchedFstab: unmatched,
    applications: facts.applications.applications,
    applicationsProblem: facts.applications.problem,
  };
}

async function inspectWindows(info: GuestFilesystemInfo, root: FileTree, systemroot: string, all: GuestFilesystemInfo[], problems: string[], options: InspectOptions): Promise<OperatingSystem> {
  const facts = await readWindowsFacts(root, systemroot, all);
  problems.push(...facts.problems.map((p) => `${info.device}: ${p}`));
  return {
    root: info.device,
    type: 'windows',
    distro: 'windows',
    productName: facts.productName,
    productVariant: facts.productVariant,
    majorVersion: facts.majorVersion,
    minorVersion: facts.minorVersion,
    hostname: facts.hostname,
    osinfo: facts.osinfo,
    arch: facts.arch,
    windowsSystemroot: systemroot,
    windowsCurrentControlSet: facts.currentControlSet,
    driveMappings: facts.driveMappings,
    mountpoints: [{ device: info.device, mountpoint: '/' }],
    unmatchedFstab: [],
    applications: options.applications === false ? [] : facts.applications,
  };
}

/** A tree of the mounts that open; a mount that does not is reported and left out (its directory shows the root's). */
export async function mountWhatReads(guest: Guest, mounts: MountSpec[], problems: string[]): Promise<GuestTree> {
  const usable: MountSpec[] = [];
  for (const m of mounts) {
    const info = await guest.filesystem(m.device);
    try {
      if (!info) throw new Error('no such device');
      await info.open();
      usable.push(m);
    } catch (err) {
      problems.push(`${m.device} (${m.mountpoint}): not mounted: ${err instanceof Error ? err.message.replace(`${m.device}: `, '') : String(err)}`);
    }
  }
  return GuestTree.open(guest, usable);
}
