/**
 * Windows roots: a filesystem with a Windows\System32 tree (names matched
 * without regard to case, as Windows matches them), and what its registry
 * says (through @guestlens/regf): product name and version, edition and
 * installation type, host name, the current control set, drive letters
 * (MountedDevices, matched to the guest's partitions by MBR disk signature
 * and offset, or by GPT partition GUID) and the installed applications.
 */
import type { Hive } from '@guestlens/regf';
import { GuestPathError } from '../errors.ts';
import type { GuestFilesystemInfo } from '../guest/guest.ts';
import type { FileTree } from '../guest/guestFilesystem.ts';
import { GuestFileSource } from '../guest/fileSource.ts';
import type { Application } from './packages/application.ts';

/** The system root ("/Windows", "/WINNT", as the names are stored) or undefined. */
export async function windowsSystemRoot(tree: FileTree): Promise<string | undefined> {
  try {
    for (const top of await tree.readdir('/')) {
      if (!['windows', 'winnt'].includes(top.name.toLowerCase())) continue;
      const inside = await tree.readdir(`/${top.name}`).catch(() => []);
      if (inside.some((e) => e.name.toLowerCase() === 'system32')) return `/${top.name}`;
    }
  } catch (err) {
    if (!(err instanceof GuestPathError)) throw err;
  }
  return undefined;
}

/** `path` with each component matched without regard to case (Windows's rule), or undefined. */
export async function caseInsensitivePath(tree: FileTree, path: string): Promise<string | undefined> {
  let at = '';
  for (const part of path.split('/').filter(Boolean)) {
    let entries;
    try {
      entries = await tree.readdir(at || '/');
    } catch (err) {
      if (err instanceof GuestPathError) return undefined;
      throw err;
    }
    const upper = part.toUpperCase();
    const hit = entries.find((e) => e.name === part) ?? entries.find((e) => e.name.toUpperCase() === upper);
    if (!hit) return undefined;
    at = `${at}/${hit.name}`;
  }
  return at || '/';
}

export interface WindowsFactsResult {
  productName?: string;
  productVariant?: string;
  majorVersion: number;
  minorVersion: number;
  hostname?: string;
  osinfo?: string;
  currentControlSet?: string;
  driveMappings: { letter: string; device: string }[];
  applications: Application[];
  arch?: string;
  problems: string[];
}

/** PE machine types, named as libguestfs names architectures. */
const PE_MACHINES: Record<number, string> = { 0x14c: 'i386', 0x8664: 'x86_64', 0xaa64: 'aarch64', 0x1c4: 'armv7l', 0x200: 'ia64' };

/** The architecture of cmd.exe (or another system binary): its PE header's machine field. */
async function peArchitecture(tree: FileTree, systemroot: string): Promise<string | undefined> {
  for (const name of ['cmd.exe', 'ntoskrnl.exe', 'kernel32.dll']) {
    const path = await caseInsensitivePath(tree, `${systemroot}/System32/${name}`);
    if (!path) continue;
    try {
      const head = await tree.readRange(path, 0, 4096);
      if (head.length < 64 || head.toString('latin1', 0, 2) !== 'MZ') continue;
      const pe = head.readUInt32LE(0x3c);
      if (pe + 6 > head.length || head.toString('latin1', pe, pe + 4) !== 'PE\0\0') continue;
      const arch = PE_MACHINES[head.readUInt16LE(pe + 4)];
      if (arch) return arch;
    } catch (err) {
      if (!(err instanceof GuestPathError)) throw err;
    }
  }
  return undefined;
}

export async function readWindowsFacts(tree: FileTree, systemroot: string, all: GuestFilesystemInfo[]): Promise<WindowsFactsResult> {
  const { openHive, windowsFacts } = await import('@guestlens/regf');
  const result: WindowsFactsResult = { majorVersion: 0, minorVersion: 0, driveMappings: [], applications: [], problems: [] };
  const hive = async (name: string): Promise<Hive | undefined> => {
    const path = await caseInsensitivePath(tree, `${systemroot}/System32/config/${name}`);
    if (!path) {
      result.problems.push(`${systemroot}\\System32\\config\\${name}: not found`);
      return undefined;
    }
    try {
      return await openHive(await GuestFileSource.open(tree, path), { name: path });
    } catch (err) {
      result.problems.push(`${path}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  };
  result.arch = await peArchitecture(tree, systemroot);
  const software = await hive('SOFTWARE');
  const system = await hive('SYSTEM');
  if (!software && !system) return result;
  const facts = await windowsFacts({ software, system });
  const v = facts.version;
  result.productName = v.productName;
  result.productVariant = v.installationType;
  result.majorVersion = v.majorVersion ?? 0;
  result.minorVersion = v.minorVersion ?? 0;
  result.hostname = facts.hostname;
  result.osinfo = facts.osinfo === 'unknown' ? undefined : facts.osinfo;
  result.currentControlSet = facts.system.currentControlSet;
  for (const m of facts.system.driveMappings) {
    const device = deviceOf(m.target, all);
    if (device) result.driveMappings.push({ letter: m.letter, device });
  }
  result.applications = facts.applications.map((a) => ({
    name: a.name,
    displayName: a.displayName,
    version: a.displayVersion ?? '',
    ...(a.publisher ? { publisher: a.publisher } : {}),
    ...(a.installLocation ? { installPath: a.installLocation } : {}),
    ...(a.urlInfoAbout ? { url: a.urlInfoAbout } : {}),
    ...(a.comments ? { description: a.comments } : {}),
  }));
  for (const d of facts.dirtyHives) result.problems.push(`${d.hive}: the hive is dirty (${d.reasons.join('; ')}): read as it is, without its transaction logs`);
  for (const w of facts.warnings) result.problems.push(`${w.hive}: ${w.message}`);
  return result;
}

type Target = Awaited<ReturnType<typeof import('@guestlens/regf').windowsFacts>>['system']['driveMappings'][number]['target'];

function deviceOf(t: Target, all: GuestFilesystemInfo[]): string | undefined {
  if (t.kind === 'mbr') {
    const sig = t.diskSignature.toLowerCase();
    return all.find((f) => f.partition && f.disk.partitionTable?.diskId?.toLowerCase() === sig && f.partition.offset === t.partitionOffset)?.device;
  }
  if (t.kind === 'gpt') return all.find((f) => f.partition?.uuid?.toUpperCase() === t.partitionGuid.toUpperCase())?.device;
  return undefined;
}
