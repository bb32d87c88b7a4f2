/**
 * What a Linux root filesystem says about its operating system, read the
 * way libguestfs's inspection reads it: /etc/os-release (or
 * /usr/lib/os-release), then lsb-release, redhat-release and debian_version
 * as fallbacks (Debian's os-release has no minor version: debian_version
 * gives it); the hostname from /etc/hostname or the network configuration
 * files distributions use; the architecture from an ELF binary; the
 * machine id; the package database.
 */
import { GuestPathError } from '../errors.ts';
import type { FileTree } from '../guest/guestFilesystem.ts';
import { elfArchitecture } from './elf.ts';
import { parseShellVars } from './shellVars.ts';
import type { ApplicationList } from './packages/application.ts';
import { parseDpkgStatus } from './packages/dpkg.ts';
import { isBerkeleyDb, rpmApplications } from './packages/rpm.ts';

export interface LinuxFacts {
  distro: string;
  productName?: string;
  majorVersion: number;
  minorVersion: number;
  hostname?: string;
  arch?: string;
  machineId?: string;
  osinfo?: string;
  packageFormat?: string;
  packageManagement?: string;
  applications: ApplicationList;
}

/** Small text files are read whole, bounded: a hostile guest's 4 GiB /etc/hostname is not. */
const MAX_SMALL_FILE = 1024 * 1024;
const MAX_PACKAGE_DB = 512 * 1024 * 1024;

export async function readText(tree: FileTree, path: string, limit = MAX_SMALL_FILE): Promise<string | undefined> {
  try {
    return (await tree.readFile(path, { maxBytes: limit })).toString('utf8');
  } catch (err) {
    if (err instanceof GuestPathError) return undefined;
    throw err;
  }
}

async function exists(tree: FileTree, path: string): Promise<boolean> {
  try {
    await tree.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof GuestPathError) return false;
    throw err;
  }
}

/** Whether the tree looks like a Linux root: an /etc directory with one of the files inspection reads. */
export async function isLinuxRoot(tree: FileTree): Promise<boolean> {
  try {
    if ((await tree.stat('/etc')).type !== 'directory') return false;
  } catch (err) {
    if (err instanceof GuestPathError) return false;
    throw err;
  }
  for (const f of ['/etc/os-release', '/usr/lib/os-release', '/etc/lsb-release', '/etc/redhat-release', '/etc/debian_version', '/etc/fstab', '/etc/SuSE-release', '/etc/alpine-release']) {
    if (await exists(tree, f)) return true;
  }
  return false;
}

/** os-release IDs under libguestfs's distro names. */
const DISTROS: Record<string, string> = {
  rhel: 'rhel', centos: 'centos', fedora: 'fedora', debian: 'debian', ubuntu: 'ubuntu', rocky: 'rocky', almalinux: 'alma',
  ol: 'oraclelinux', sles: 'sles', sled: 'sles', 'opensuse-leap': 'opensuse', 'opensuse-tumbleweed': 'opensuse', opensuse: 'opensuse',
  arch: 'archlinux', alpine: 'alpinelinux', gentoo: 'gentoo', altlinux: 'altlinux', kali: 'kalilinux', linuxmint: 'linuxmint',
  mageia: 'mageia', void: 'voidlinux', frugalware: 'frugalware', pardus: 'pardus', cirros: 'cirros', coreos: 'coreos', 'rhcos': 'rhcos',
};

function versionParts(v: string | undefined): [number, number] {
  const m = /^(\d+)(?:\.(\d+))?/.exec(v ?? '');
  return m ? [Number(m[1]), Number(m[2] ?? 0)] : [0, 0];
}

export async function linuxFacts(tree: FileTree, options: { applications?: boolean } = {}): Promise<LinuxFacts> {
  const facts: LinuxFacts = { distro: 'unknown', majorVersion: 0, minorVersion: 0, applications: { applications: [] } };
  const osRelease = (await readText(tree, '/etc/os-release')) ?? (await readText(tree, '/usr/lib/os-release'));
  if (osRelease !== undefined) {
    const v = parseShellVars(osRelease);
    const id = v.get('ID') ?? '';
    facts.distro = DISTROS[id] ?? (id || 'unknown');
    facts.productName = v.get('PRETTY_NAME') ?? v.get('NAME');
    [facts.majorVersion, facts.minorVersion] = versionParts(v.get('VERSION_ID'));
  } else {
    const lsb = await readText(tree, '/etc/lsb-release');
    const redhat = await readText(tree, '/etc/redhat-release');
    if (lsb !== undefined) {
      const v = parseShellVars(lsb);
      facts.distro = (v.get('DISTRIB_ID') ?? 'unknown').toLowerCase();
      facts.productName = v.get('DISTRIB_DESCRIPTION');
      [facts.majorVersion, facts.minorVersion] = versionParts(v.get('DISTRIB_RELEASE'));
    } else if (redhat !== undefined) {
      const line = redhat.split('\n')[0].trim();
      facts.productName = line;
      facts.distro = /^Fedora/.test(line) ? 'fedora' : /^CentOS/.test(line) ? 'centos' : /^Red Hat/.test(line) ? 'rhel' : /^Rocky/.test(line) ? 'rocky' : 'redhat-based';
      [facts.majorVersion, facts.minorVersion] = versionParts(/release (\d+(?:\.\d+)?)/.exec(line)?.[1]);
    }
  }
  // Debian's os-release says "12"; debian_version says "12.5" (testing and sid say a codename).
  const debianVersion = (await readText(tree, '/etc/debian_version'))?.trim();
  if (debianVersion !== undefined && (facts.distro === 'debian' || facts.distro === 'unknown')) {
    facts.distro = 'debian';
    const m = /^(\d+)\.(\d+)/.exec(debianVersion);
    if (m) [facts.majorVersion, facts.minorVersion] = [Number(m[1]), Number(m[2])];
    facts.productName ??= debianVersion;
  }
  facts.hostname = await hostname(tree);
  facts.arch = await architecture(tree);
  const machineId = (await readText(tree, '/etc/machine-id'))?.trim();
  if (machineId && /^[0-9a-f]{32}$/.test(machineId)) facts.machineId = machineId;
  facts.osinfo = osinfoId(facts);
  if (options.applications ?? true) facts.applications = await applications(tree, facts);
  return facts;
}

async function hostname(tree: FileTree): Promise<string | undefined> {
  const plain = (await readText(tree, '/etc/hostname')) ?? (await readText(tree, '/etc/HOSTNAME'));
  const first = plain?.split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#'));
  if (first) return first;
  for (const [path, key] of [['/etc/sysconfig/network', 'HOSTNAME'], ['/etc/conf.d/hostname', 'hostname']] as const) {
    const text = await readText(tree, path);
    const value = text === undefined ? undefined : parseShellVars(text).get(key);
    if (value) return value;
  }
  return undefined;
}

async function architecture(tree: FileTree): Promise<string | undefined> {
  for (const path of ['/bin/sh', '/usr/bin/ls', '/bin/ls', '/bin/bash', '/usr/bin/bash', '/sbin/init']) {
    try {
      const st = await tree.stat(path);
      if (st.type !== 'file') continue;
      const arch = elfArchitecture(await tree.readRange(path, 0, 64));
      if (arch) return arch;
    } catch (err) {
      if (!(err instanceof GuestPathError)) throw err;
    }
  }
  return undefined;
}

/** libosinfo's short id for the distributions it names that way. */
function osinfoId(f: LinuxFacts): string | undefined {
  const { distro: d, majorVersion: maj, minorVersion: min } = f;
  if (maj === 0) return undefined;
  switch (d) {
    case 'debian':
      return `debian${maj}`;
    case 'fedora':
      return `fedora${maj}`;
    case 'rhel':
    case 'centos':
    case 'rocky':
    case 'alma':
    case 'oraclelinux': {
      const prefix = { rhel: 'rhel', centos: 'centos', rocky: 'rocky', alma: 'almalinux', oraclelinux: 'ol' }[d];
      return d === 'centos' && maj >= 8 ? `centos-stream${maj}` : `${prefix}${maj}.${min}`;
    }
    case 'ubuntu':
      return `ubuntu${maj}.${String(min).padStart(2, '0')}`;
    case 'opensuse':
      return `opensuse${maj}.${min}`;
    case 'sles':
      return min ? `sles${maj}sp${min}` : `sles${maj}`;
    case 'alpinelinux':
      return `alpinelinux${maj}.${min}`;
    default:
      return undefined;
  }
}

async function applications(tree: FileTree, facts: LinuxFacts): Promise<ApplicationList> {
  const dpkg = await readText(tree, '/var/lib/dpkg/status', MAX_PACKAGE_DB);
  if (dpkg !== undefined) {
    facts.packageFormat = 'deb';
    facts.packageManagement = 'apt';
    return { source: 'dpkg', applications: parseDpkgStatus(dpkg) };
  }
  for (const dir of ['/var/lib/rpm', '/usr/lib/sysimage/rpm']) {
    const sqlite = await tree.readFile(`${dir}/rpmdb.sqlite`, { maxBytes: MAX_PACKAGE_DB }).catch(() => undefined);
    if (sqlite) {
      setRpmManagement(facts);
      const wal = await tree.stat(`${dir}/rpmdb.sqlite-wal`).catch(() => undefined);
      return rpmApplications(sqlite, wal?.size);
    }
    const bdb = await tree.readFile(`${dir}/Packages`, { maxBytes: MAX_PACKAGE_DB }).catch(() => undefined);
    if (bdb) {
      setRpmManagement(facts);
      const what = isBerkeleyDb(bdb) ? 'a BerkeleyDB database (RHEL 8 and older)' : 'not a format guestlens knows';
      return { source: 'rpm', applications: [], problem: `${dir}/Packages is ${what}; guestlens reads only RPM's SQLite database (rpmdb.sqlite), so no packages are listed` };
    }
    if (await exists(tree, `${dir}/Packages.db`)) {
      setRpmManagement(facts);
      return { source: 'rpm', applications: [], problem: `${dir}/Packages.db is an RPM "ndb" database (SUSE), which guestlens does not read; no packages are listed` };
    }
  }
  return { applications: [] };
}

function setRpmManagement(facts: LinuxFacts): void {
  facts.packageFormat = 'rpm';
  if (['sles', 'opensuse'].includes(facts.distro)) facts.packageManagement = 'zypper';
  else if (facts.distro === 'fedora' || (['rhel', 'centos', 'rocky', 'alma', 'oraclelinux'].includes(facts.distro) && facts.majorVersion >= 8)) facts.packageManagement = 'dnf';
  else facts.packageManagement = 'yum';
}
