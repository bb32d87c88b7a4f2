/**
 * What guestlens inspection reads from a Windows guest's registry, given the
 * SOFTWARE and SYSTEM hives (either may be missing):
 *
 *  - SOFTWARE\Microsoft\Windows NT\CurrentVersion: ProductName, the version
 *    (CurrentMajorVersionNumber/CurrentMinorVersionNumber, or CurrentVersion
 *    "6.1" before Windows 10), CurrentBuild and CurrentBuildNumber,
 *    EditionID, InstallationType (virt-inspector's <product_variant>),
 *    DisplayVersion/ReleaseId, UBR, SystemRoot;
 *  - the installed applications of the Uninstall keys (native and
 *    WOW6432Node) with the fields virt-inspector shows, chosen as libguestfs
 *    chooses them (a subkey counts when its DisplayName is a string), plus
 *    libguestfs's Windows Defender heuristic;
 *  - SYSTEM: the current control set (Select\Current), the computer name
 *    (ComputerName\ComputerName), the TCP/IP host name (what virt-inspector
 *    prints as <hostname>), and MountedDevices decoded;
 *  - the libosinfo short id (osinfo.ts).
 *
 * Reading is tolerant: a missing key or value is simply absent; a value of
 * the wrong type, or a damaged part of a hive, becomes a warning and the rest
 * is still read (the integrator shows the warnings; none is silent).
 */
import { isGuestlensError, isRetryable } from '@guestlens/block';
import type { Hive, RegistryKey } from '../hive.ts';
import type { Timestamp } from '../filetime.ts';
import { decodeMountedDevice, type MountedDevice, type MountedDeviceTarget } from './mountedDevices.ts';
import { windowsOsinfo } from './osinfo.ts';

export interface WindowsVersionFacts {
  productName?: string;
  /** CurrentMajorVersionNumber, else the major part of CurrentVersion. */
  majorVersion?: number;
  minorVersion?: number;
  /** CurrentVersion as stored ("6.3"; Windows 10 and later keep "6.3" there too). */
  currentVersion?: string;
  currentBuild?: string;
  currentBuildNumber?: string;
  /** The build as a number: CurrentBuildNumber, else CurrentBuild. */
  buildNumber?: number;
  /** Update build revision (the number after the build: 22631.4317). */
  ubr?: number;
  /** DisplayVersion ("23H2"), else ReleaseId ("1809"). */
  displayVersion?: string;
  editionId?: string;
  /** "Client", "Server", "Server Core", ...: virt-inspector's <product_variant>. */
  installationType?: string;
  /** "C:\Windows" */
  systemRoot?: string;
}

export interface WindowsApplication {
  /** The Uninstall subkey's name (virt-inspector's <name>). */
  name: string;
  displayName: string;
  displayVersion?: string;
  publisher?: string;
  installLocation?: string;
  urlInfoAbout?: string;
  comments?: string;
  /** Which Uninstall key listed it; 'heuristic' for libguestfs's Windows Defender rule. */
  source: 'native' | 'wow64' | 'heuristic';
  /** When its Uninstall subkey was last written (about when it was installed or updated). */
  lastWritten?: Timestamp;
}

export interface DriveMapping {
  /** "C" */
  letter: string;
  target: MountedDeviceTarget;
}

export interface WindowsSystemFacts {
  /** "ControlSet001", from Select\Current. */
  currentControlSet?: string;
  /** ControlSet00N\Control\ComputerName\ComputerName\ComputerName (the NetBIOS name). */
  computerName?: string;
  /** ControlSet00N\Services\Tcpip\Parameters\Hostname: what virt-inspector prints as <hostname>. */
  tcpipHostname?: string;
  /** Every value of MountedDevices, decoded. */
  mountedDevices: MountedDevice[];
  /** The drive letters among them, by letter. */
  driveMappings: DriveMapping[];
}

export interface FactWarning {
  /** Which hive: the name it was opened with. */
  hive: string;
  message: string;
  /** The cause may be a live guest writing the hive (read it again after a refresh). */
  retryable: boolean;
}

export interface WindowsFacts {
  version: WindowsVersionFacts;
  /** libosinfo short id ("win2k22", "win11"; "unknown" when it cannot be told). */
  osinfo: string;
  /** The host name to show: the TCP/IP host name, else the computer name. */
  hostname?: string;
  system: WindowsSystemFacts;
  applications: WindowsApplication[];
  /** Hives that are dirty (read without their transaction logs), with why. */
  dirtyHives: Array<{ hive: string; reasons: string[] }>;
  warnings: FactWarning[];
}

/** Collects warnings; runs a read and keeps going when the hive is damaged there. */
class Reader {
  readonly warnings: FactWarning[] = [];
  constructor(readonly hive: Hive) {}

  async attempt<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (err) {
      if (!isGuestlensError(err)) throw err;
      this.warnings.push({ hive: this.hive.name, message: `${what}: ${err.message}`, retryable: isRetryable(err) });
      return undefined;
    }
  }

  /** A string value (REG_SZ, REG_EXPAND_SZ); absent when missing; a warning when of another type. */
  async string(key: RegistryKey, name: string, quiet = false): Promise<string | undefined> {
    return this.attempt(`${key.path} ${name}`, async () => {
      const v = await key.value(name);
      if (!v) return undefined;
      const d = await v.data();
      if (d.kind === 'string') return d.value;
      if (!quiet) this.warnings.push({ hive: this.hive.name, message: `${key.path} ${name} is ${v.typeName}, not a string: ignored`, retryable: false });
      return undefined;
    });
  }

  async dword(key: RegistryKey, name: string): Promise<number | undefined> {
    return this.attempt(`${key.path} ${name}`, async () => {
      const v = await key.value(name);
      if (!v) return undefined;
      const d = await v.data();
      if (d.kind === 'dword') return d.value;
      this.warnings.push({ hive: this.hive.name, message: `${key.path} ${name} is ${v.typeName}${d.kind === 'bytes' && d.reason ? ` (${d.reason})` : ''}, not a 32-bit number: ignored`, retryable: false });
      return undefined;
    });
  }

  async key(path: string): Promise<RegistryKey | undefined> {
    return this.attempt(`\\${path}`, () => this.hive.key(path));
  }
}

const CURRENT_VERSION = 'Microsoft\\Windows NT\\CurrentVersion';
const UNINSTALL = 'Microsoft\\Windows\\CurrentVersion\\Uninstall';
const UNINSTALL_WOW64 = `WOW6432Node\\${UNINSTALL}`;

function parseDecimal(s: string | undefined): number | undefined {
  return s !== undefined && /^\d{1,9}$/.test(s.trim()) ? Number(s.trim()) : undefined;
}

async function readVersionFacts(r: Reader): Promise<WindowsVersionFacts> {
  const facts: WindowsVersionFacts = {};
  const cv = await r.key(CURRENT_VERSION);
  if (!cv) {
    r.warnings.push({ hive: r.hive.name, message: `no \\${CURRENT_VERSION} key: not a Windows SOFTWARE hive?`, retryable: false });
    return facts;
  }
  facts.productName = await r.string(cv, 'ProductName');
  facts.currentVersion = await r.string(cv, 'CurrentVersion');
  const major = await r.dword(cv, 'CurrentMajorVersionNumber');
  const minor = await r.dword(cv, 'CurrentMinorVersionNumber');
  // As libguestfs: both numbers, or else CurrentVersion "major.minor".
  if (major !== undefined && minor !== undefined) {
    facts.majorVersion = major;
    facts.minorVersion = minor;
  } else {
    const m = /^(\d+)\.(\d+)/.exec(facts.currentVersion ?? '');
    if (m) {
      facts.majorVersion = Number(m[1]);
      facts.minorVersion = Number(m[2]);
    }
  }
  facts.currentBuild = await r.string(cv, 'CurrentBuild');
  facts.currentBuildNumber = await r.string(cv, 'CurrentBuildNumber');
  facts.buildNumber = parseDecimal(facts.currentBuildNumber) ?? parseDecimal(facts.currentBuild);
  facts.ubr = await r.dword(cv, 'UBR');
  facts.displayVersion = (await r.string(cv, 'DisplayVersion')) ?? (await r.string(cv, 'ReleaseId'));
  facts.editionId = await r.string(cv, 'EditionID');
  facts.installationType = await r.string(cv, 'InstallationType');
  facts.systemRoot = await r.string(cv, 'SystemRoot');
  for (const k of Object.keys(facts) as Array<keyof WindowsVersionFacts>) if (facts[k] === undefined) delete facts[k];
  return facts;
}

async function readApplications(r: Reader): Promise<WindowsApplication[]> {
  const apps: WindowsApplication[] = [];
  for (const [path, source] of [
    [UNINSTALL, 'native'],
    [UNINSTALL_WOW64, 'wow64'],
  ] as const) {
    const uninstall = await r.key(path);
    if (!uninstall) continue;
    const subkeys = (await r.attempt(`subkeys of \\${path}`, () => uninstall.subkeys())) ?? [];
    for (const sub of subkeys) {
      // As libguestfs: a subkey is an application when its DisplayName is a string.
      const displayName = await r.string(sub, 'DisplayName', true);
      if (displayName === undefined) continue;
      const app: WindowsApplication = { name: sub.name, displayName, source, lastWritten: sub.lastWritten };
      const fields = [
        ['displayVersion', 'DisplayVersion'],
        ['publisher', 'Publisher'],
        ['installLocation', 'InstallLocation'],
        ['urlInfoAbout', 'URLInfoAbout'],
        ['comments', 'Comments'],
      ] as const;
      for (const [field, value] of fields) {
        const s = await r.string(sub, value, true);
        if (s !== undefined) app[field] = s;
      }
      apps.push(app);
    }
  }
  // libguestfs lists Windows Defender, which has no Uninstall entry, when its key exists and it is not disabled.
  const defender = await r.key('Microsoft\\Windows Defender');
  if (defender) {
    const disabled = await r.attempt('\\Microsoft\\Windows Defender DisableAntiVirus', async () => {
      const v = await defender.value('DisableAntiVirus');
      const b = v ? await v.bytes() : undefined;
      return b !== undefined && b.length >= 4 && b.readUInt32LE(0) === 1;
    });
    if (!disabled) apps.push({ name: 'WinDefend', displayName: 'Microsoft Defender Antivirus', publisher: 'Microsoft Corporation', source: 'heuristic' });
  }
  return apps;
}

async function readSystemFacts(r: Reader): Promise<WindowsSystemFacts> {
  const facts: WindowsSystemFacts = { mountedDevices: [], driveMappings: [] };
  const select = await r.key('Select');
  const current = select ? await r.dword(select, 'Current') : undefined;
  if (current === undefined) {
    r.warnings.push({ hive: r.hive.name, message: 'no \\Select Current value: the current control set is unknown (not a Windows SYSTEM hive?)', retryable: false });
  } else {
    facts.currentControlSet = `ControlSet${String(current).padStart(3, '0')}`;
    const computerName = await r.key(`${facts.currentControlSet}\\Control\\ComputerName\\ComputerName`);
    if (computerName) facts.computerName = await r.string(computerName, 'ComputerName');
    const tcpip = await r.key(`${facts.currentControlSet}\\Services\\Tcpip\\Parameters`);
    if (tcpip) facts.tcpipHostname = await r.string(tcpip, 'Hostname');
    if (facts.computerName === undefined) delete facts.computerName;
    if (facts.tcpipHostname === undefined) delete facts.tcpipHostname;
  }
  const mounted = await r.key('MountedDevices');
  const values = mounted ? ((await r.attempt('values of \\MountedDevices', () => mounted.values())) ?? []) : [];
  for (const v of values) {
    const data = await r.attempt(`\\MountedDevices ${v.name}`, () => v.bytes());
    if (data === undefined) continue;
    const device = decodeMountedDevice(v.name, data);
    facts.mountedDevices.push(device);
    if (device.driveLetter) facts.driveMappings.push({ letter: device.driveLetter, target: device.target });
  }
  facts.driveMappings.sort((a, b) => (a.letter < b.letter ? -1 : a.letter > b.letter ? 1 : 0));
  return facts;
}

/** Everything above from the guest's SOFTWARE and SYSTEM hives (each optional). */
export async function windowsFacts(hives: { software?: Hive; system?: Hive }): Promise<WindowsFacts> {
  const warnings: FactWarning[] = [];
  const dirtyHives: WindowsFacts['dirtyHives'] = [];
  let version: WindowsVersionFacts = {};
  let applications: WindowsApplication[] = [];
  let system: WindowsSystemFacts = { mountedDevices: [], driveMappings: [] };
  if (hives.software) {
    const r = new Reader(hives.software);
    version = await readVersionFacts(r);
    applications = await readApplications(r);
    warnings.push(...r.warnings);
  }
  if (hives.system) {
    const r = new Reader(hives.system);
    system = await readSystemFacts(r);
    warnings.push(...r.warnings);
  }
  for (const hive of [hives.software, hives.system]) {
    if (!hive) continue;
    if (hive.dirty) dirtyHives.push({ hive: hive.name, reasons: [...hive.dirtyReasons] });
    for (const w of hive.warnings) warnings.push({ hive: hive.name, message: w, retryable: false });
  }
  const facts: WindowsFacts = { version, osinfo: windowsOsinfo(version), system, applications, dirtyHives, warnings };
  const hostname = system.tcpipHostname ?? system.computerName;
  if (hostname !== undefined) facts.hostname = hostname;
  return facts;
}

