/**
 * /etc/fstab → the mount map: which guest device is mounted where. Specs are
 * matched against the guest's devices the way the guest's mount(8) and udev
 * would find them: UUID=, LABEL=, PARTUUID=, PARTLABEL=, /dev/disk/by-*,
 * /dev/mapper/VG-LV and /dev/VG/LV, /dev/sdX, /dev/vdX, /dev/xvdX, /dev/hdX
 * (the disks in guest order, as libguestfs names them), btrfs subvol=.
 * Entries that match nothing are reported, not fatal; pseudo and network
 * filesystems, swap and bind mounts are left out.
 */
import { canonicalDeviceName, btrfsSubvolumeDevice, lvDevice } from '../guest/deviceName.ts';
import type { GuestFilesystemInfo } from '../guest/guest.ts';

export interface FstabEntry {
  spec: string;
  mountpoint: string;
  vfstype: string;
  options: string[];
  /** Line number in /etc/fstab (from 1). */
  line: number;
}

export interface MountMapEntry {
  device: string;
  mountpoint: string;
  /** From fstab, when the entry came from there. */
  fstab?: FstabEntry;
}

export interface UnmatchedEntry {
  entry: FstabEntry;
  reason: string;
}

/** Filesystem types that are not on the guest's disks. */
const NOT_ON_DISK = new Set([
  'proc', 'sysfs', 'tmpfs', 'devpts', 'devtmpfs', 'ramfs', 'cgroup', 'cgroup2', 'securityfs', 'debugfs', 'tracefs', 'configfs',
  'fusectl', 'hugetlbfs', 'mqueue', 'pstore', 'efivarfs', 'binfmt_misc', 'autofs', 'bpf', 'none', 'swap',
  'nfs', 'nfs4', 'cifs', 'smbfs', 'smb3', 'sshfs', 'fuse.sshfs', 'glusterfs', 'ceph', '9p', 'virtiofs', 'iso9660', 'udf', 'auto',
]);

/** Lines of /etc/fstab as entries; comments, blank and malformed lines dropped. Escapes (\040 for a space) decoded. */
export function parseFstab(text: string): FstabEntry[] {
  const out: FstabEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const fields = line.split(/\s+/).map(unescapeOctal);
    if (fields.length < 2) return;
    out.push({ spec: fields[0], mountpoint: fields[1], vfstype: fields[2] ?? 'auto', options: (fields[3] ?? 'defaults').split(','), line: i + 1 });
  });
  return out;
}

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** udev's escaping in /dev/disk/by-label names: \x2f for "/", and so on. */
function unescapeUdev(s: string): string {
  return s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** /dev/mapper/VG-LV: dashes in names are doubled; a single dash separates VG from LV. */
export function parseMapperName(name: string): { vg: string; lv: string } | undefined {
  for (let i = 1; i < name.length - 1; i++) {
    if (name[i] !== '-') continue;
    if (name[i + 1] === '-') {
      i++;
      continue;
    }
    if (name[i - 1] === '-') continue;
    return { vg: name.slice(0, i).replace(/--/g, '-'), lv: name.slice(i + 1).replace(/--/g, '-') };
  }
  return undefined;
}

export interface ResolveContext {
  filesystems: GuestFilesystemInfo[];
  /** The guest device the root filesystem was found on: an fstab entry for "/" names it too. */
  rootDevice: string;
}

/** The guest device an fstab spec names, or why none. */
export function resolveSpec(spec: string, ctx: ResolveContext): { device: string } | { reason: string } {
  const fss = ctx.filesystems;
  const byProbe = (key: 'uuid' | 'label', value: string) =>
    fss.filter((f) => !f.consumedBy && (key === 'uuid' ? f.uuid?.toLowerCase() === value.toLowerCase() : f.label === value));
  const byPartition = (key: 'uuid' | 'name', value: string) =>
    fss.filter((f) => f.partition && (key === 'uuid' ? partuuidOf(f)?.toLowerCase() === value.toLowerCase() : f.partition.name === value));
  const one = (list: GuestFilesystemInfo[], what: string) => {
    if (list.length === 1) return { device: list[0].device };
    if (list.length === 0) return { reason: `no device of the guest has ${what}` };
    return { reason: `several devices have ${what} (${list.map((f) => f.device).join(', ')})` };
  };
  let m: RegExpExecArray | null;
  if ((m = /^UUID=(.+)$/i.exec(spec)) || (m = /^\/dev\/disk\/by-uuid\/(.+)$/.exec(spec))) return one(byProbe('uuid', unquote(m[1])), `UUID ${unquote(m[1])}`);
  if ((m = /^LABEL=(.+)$/i.exec(spec))) return one(byProbe('label', unquote(m[1])), `label ${JSON.stringify(unquote(m[1]))}`);
  if ((m = /^\/dev\/disk\/by-label\/(.+)$/.exec(spec))) return one(byProbe('label', unescapeUdev(m[1])), `label ${JSON.stringify(unescapeUdev(m[1]))}`);
  if ((m = /^PARTUUID=(.+)$/i.exec(spec)) || (m = /^\/dev\/disk\/by-partuuid\/(.+)$/.exec(spec))) return one(byPartition('uuid', unquote(m[1])), `partition UUID ${unquote(m[1])}`);
  if ((m = /^PARTLABEL=(.+)$/i.exec(spec))) return one(byPartition('name', unquote(m[1])), `partition label ${JSON.stringify(unquote(m[1]))}`);
  if ((m = /^\/dev\/disk\/by-partlabel\/(.+)$/.exec(spec))) return one(byPartition('name', unescapeUdev(m[1])), `partition label ${JSON.stringify(unescapeUdev(m[1]))}`);
  if ((m = /^\/dev\/mapper\/(.+)$/.exec(spec))) {
    const names = parseMapperName(m[1]);
    if (!names) return { reason: `${spec} is not a logical volume name (VG-LV)` };
    return exists(lvDevice(names.vg, names.lv), fss);
  }
  if ((m = /^\/dev\/([^/]+)\/([^/]+)$/.exec(spec)) && !['disk', 'mapper'].includes(m[1])) return exists(lvDevice(m[1], m[2]), fss);
  if (/^\/dev\/(?:[shv]d|xvd)[a-z]+\d*$/.test(spec)) return exists(canonicalDeviceName(spec), fss);
  if (/^\/dev\/disk\/by-(?:id|path)\//.test(spec)) return { reason: `${spec} names hardware the disk image does not describe` };
  return { reason: `${spec} is not a device name guestlens can match` };
}

function exists(device: string, fss: GuestFilesystemInfo[]): { device: string } | { reason: string } {
  return fss.some((f) => f.device === device) ? { device } : { reason: `the guest has no device ${device}` };
}

function unquote(v: string): string {
  return v.replace(/^"(.*)"$/, '$1');
}

/** PARTUUID as the kernel reports it: the GPT partition GUID, or for MBR the disk signature and partition number (xxxxxxxx-NN). */
function partuuidOf(f: GuestFilesystemInfo): string | undefined {
  const p = f.partition;
  if (!p) return undefined;
  if (p.uuid) return p.uuid;
  const sig = f.disk.partitionTable?.diskId;
  if (sig && /^0x[0-9a-f]{8}$/i.test(sig)) return `${sig.slice(2)}-${p.number.toString(16).padStart(2, '0')}`;
  return undefined;
}

/** The mount map an fstab gives: entries on the guest's disks, each resolved to a device (root first). */
export function mountMapFromFstab(entries: FstabEntry[], ctx: ResolveContext): { mounts: MountMapEntry[]; unmatched: UnmatchedEntry[] } {
  const mounts: MountMapEntry[] = [];
  const unmatched: UnmatchedEntry[] = [];
  for (const e of entries) {
    if (NOT_ON_DISK.has(e.vfstype) || e.options.includes('bind') || e.options.includes('rbind') || !e.mountpoint.startsWith('/')) continue;
    const r = resolveSpec(e.spec, ctx);
    if ('reason' in r) {
      unmatched.push({ entry: e, reason: r.reason });
      continue;
    }
    let device = r.device;
    const subvol = e.options.find((o) => o.startsWith('subvol='))?.slice('subvol='.length);
    if (subvol !== undefined && e.vfstype === 'btrfs') device = btrfsSubvolumeDevice(device, subvol);
    if (mounts.some((x) => x.mountpoint === e.mountpoint)) continue;
    mounts.push({ device, mountpoint: e.mountpoint, fstab: e });
  }
  // In fstab order, as virt-inspector lists them, with "/" first (mounting sorts them by depth itself).
  const rootAt = mounts.findIndex((m) => m.mountpoint === '/');
  if (rootAt < 0) mounts.unshift({ device: ctx.rootDevice, mountpoint: '/' });
  else if (rootAt > 0) mounts.unshift(...mounts.splice(rootAt, 1));
  return { mounts, unmatched };
}
