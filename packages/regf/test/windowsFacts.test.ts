/**
 * Windows facts from SOFTWARE-like and SYSTEM-like hives built with
 * hivexregedit: version, edition, build, applications from both Uninstall
 * keys, the current control set, the computer and host names, and
 * MountedDevices drive letters. The MountedDevices data is made from the
 * bytes of real partition tables (sfdisk for MBR, sgdisk for GPT), so the
 * decoded disk signature, offset and partition GUID are checked against what
 * those tools print for the same disks.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openHive, windowsFacts, windowsOsinfo, decodeMountedDevice } from '../src/index.ts';
import { buildHive, hexValue, hivexget, hivexUnavailable } from './hivex.ts';
import { scratchDir } from '../../../test/support/scratch.ts';
import { sh } from '../../../test/support/run.ts';
import { guardImages } from '../../../test/support/imageGuard.ts';

const PREFIX_SOFTWARE = 'HKEY_LOCAL_MACHINE\\SOFTWARE';
const PREFIX_SYSTEM = 'HKEY_LOCAL_MACHINE\\SYSTEM';

function reg(prefix: string, keys: Array<[string, string[]]>): string {
  const lines = ['REGEDIT4', ''];
  const made = new Set<string>();
  for (const [path, values] of keys) {
    // hivexregedit needs every parent to exist first.
    const parts = path.split('\\');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('\\');
      if (!made.has(parent.toUpperCase())) {
        made.add(parent.toUpperCase());
        lines.push(`[${prefix}\\${parent}]`, '');
      }
    }
    made.add(path.toUpperCase());
    lines.push(`[${prefix}\\${path}]`, ...values, '');
  }
  return `${lines.join('\n')}\n`;
}

const utf16 = (s: string) => Buffer.from(s, 'utf16le');
const sz = (s: string) => hexValue(1, utf16(`${s}\0`));
const expandSz = (s: string) => hexValue(2, utf16(`${s}\0`));

const CV = 'Microsoft\\Windows NT\\CurrentVersion';
const UNINSTALL = 'Microsoft\\Windows\\CurrentVersion\\Uninstall';

function server2022Software(): string {
  return reg(PREFIX_SOFTWARE, [
    [
      CV,
      [
        `"ProductName"=${sz('Windows Server 2022 Datacenter')}`,
        '"CurrentMajorVersionNumber"=dword:0000000a',
        '"CurrentMinorVersionNumber"=dword:00000000',
        `"CurrentVersion"=${sz('6.3')}`,
        `"CurrentBuild"=${sz('20348')}`,
        `"CurrentBuildNumber"=${sz('20348')}`,
        '"UBR"=dword:00000a3c',
        `"DisplayVersion"=${sz('21H2')}`,
        `"EditionID"=${sz('ServerDatacenter')}`,
        `"InstallationType"=${sz('Server')}`,
        `"SystemRoot"=${sz('C:\\Windows')}`,
      ],
    ],
    [
      `${UNINSTALL}\\{23170F69-40C1-2702-2301-000001000000}`,
      [
        `"DisplayName"=${sz('7-Zip 23.01 (x64 edition)')}`,
        `"DisplayVersion"=${sz('23.01.00.0')}`,
        `"Publisher"=${sz('Igor Pavlov')}`,
        `"InstallLocation"=${sz('C:\\Program Files\\7-Zip\\')}`,
        `"URLInfoAbout"=${sz('https://www.7-zip.org/')}`,
        `"Comments"=${sz('file archiver')}`,
      ],
    ],
    [`${UNINSTALL}\\AddressBook`, [`"UninstallString"=${sz('nothing to show')}`]],
    [`${UNINSTALL}\\NumberName`, ['"DisplayName"=dword:00000001']],
    [`${UNINSTALL}\\Ünïcødé App`, [`"DisplayName"=${expandSz('Ünïcødé ☃ App')}`, `"Publisher"=${sz('Ünïcødé Corp')}`]],
    [`WOW6432Node\\${UNINSTALL}\\Notepad++`, [`"DisplayName"=${sz('Notepad++ (32-bit x86)')}`, `"DisplayVersion"=${sz('8.6.2')}`, `"Publisher"=${sz('Notepad++ Team')}`]],
    ['Microsoft\\Windows Defender', ['"DisableAntiVirus"=dword:00000000']],
  ]);
}

describe('regf: Windows facts from SOFTWARE and SYSTEM hives', function () {
  this.timeout(120_000);
  let mbrDisk: { signatureBytes: Buffer; startBytes: number; labelId: string };
  let gptDisk: { guidBytes: Buffer; sgdiskGuid: string };

  before(async function () {
    const why = await hivexUnavailable();
    if (why) {
      console.log(`      ${why}: skipped`);
      this.skip();
    }
    const dir = scratchDir('disks');
    const mbr = join(dir, 'mbr.img');
    await sh('truncate', ['-s', '8M', mbr]);
    await sh('sfdisk', ['-q', mbr], { input: 'label: dos\nlabel-id: 0x1a2b3c4d\nstart=2048, size=4096, type=7\nstart=6144, type=7\n' });
    const dump = await sh('sfdisk', ['--dump', mbr]);
    const labelId = /label-id: (0x[0-9a-f]+)/.exec(dump)![1];
    const start = Number(/start=\s*(\d+).*\n.*start=\s*(\d+)/.exec(dump)![2]);
    const head = await readFile(mbr);
    mbrDisk = { signatureBytes: Buffer.from(head.subarray(440, 444)), startBytes: start * 512, labelId };
    const gpt = join(dir, 'gpt.img');
    await sh('truncate', ['-s', '8M', gpt]);
    await sh('sgdisk', ['-n', '1:2048:+2M', '-t', '1:0700', gpt]);
    const info = await sh('sgdisk', ['-i', '1', gpt]);
    const sgdiskGuid = /Partition unique GUID: ([0-9A-F-]+)/.exec(info)![1];
    const g = await readFile(gpt);
    // The first partition entry is at LBA 2; its unique GUID at bytes 16..32.
    gptDisk = { guidBytes: Buffer.from(g.subarray(1024 + 16, 1024 + 32)), sgdiskGuid };
  });

  function systemHive(): string {
    const mbrValue = Buffer.concat([mbrDisk.signatureBytes, Buffer.alloc(8)]);
    mbrValue.writeBigUInt64LE(BigInt(mbrDisk.startBytes), 4);
    const gptValue = Buffer.concat([Buffer.from('DMIO:ID:', 'latin1'), gptDisk.guidBytes]);
    const cdrom = utf16('\\??\\SCSI#CdRom&Ven_QEMU&Prod_QEMU_DVD-ROM#4&1f16ac6a&0&010000#{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}');
    return reg(PREFIX_SYSTEM, [
      ['Select', ['"Current"=dword:00000002', '"Default"=dword:00000002', '"LastKnownGood"=dword:00000003']],
      ['ControlSet001\\Control\\ComputerName\\ComputerName', [`"ComputerName"=${sz('OLD-NAME')}`]],
      ['ControlSet002\\Control\\ComputerName\\ComputerName', [`"ComputerName"=${sz('WIN-SRV2022')}`]],
      ['ControlSet002\\Services\\Tcpip\\Parameters', [`"Hostname"=${sz('win-srv2022')}`, `"Domain"=${sz('example.test')}`]],
      [
        'MountedDevices',
        [
          `"\\\\DosDevices\\\\C:"=${hexValue(3, mbrValue)}`,
          `"\\\\DosDevices\\\\d:"=${hexValue(3, gptValue)}`,
          `"\\\\DosDevices\\\\E:"=${hexValue(3, cdrom)}`,
          `"\\\\??\\\\Volume{6b29fc40-ca47-1067-b31d-00dd010662da}"=${hexValue(3, mbrValue)}`,
          `"#{a1b2c3d4-0000-0000-0000-000000000000}"=${hexValue(3, Buffer.from([1, 2, 3]))}`,
        ],
      ],
    ]);
  }

  it('a Server 2022-like SOFTWARE and SYSTEM: version, osinfo, names, applications, drive letters', async () => {
    const softwarePath = await buildHive('SOFTWARE', server2022Software(), PREFIX_SOFTWARE);
    const systemPath = await buildHive('SYSTEM', systemHive(), PREFIX_SYSTEM);
    // The hives as hivex sees them (the oracle for what is in them).
    assert.equal(await hivexget(systemPath, '\\Select', 'Current'), '2');
    assert.equal(await hivexget(softwarePath, `\\${CV}`, 'ProductName'), 'Windows Server 2022 Datacenter');
    await guardImages([softwarePath, systemPath], async () => {
      const software = await openHive(await readFile(softwarePath), { name: 'C:\\Windows\\System32\\config\\SOFTWARE' });
      const system = await openHive(await readFile(systemPath), { name: 'C:\\Windows\\System32\\config\\SYSTEM' });
      const facts = await windowsFacts({ software, system });
      assert.deepEqual(facts.version, {
        productName: 'Windows Server 2022 Datacenter',
        majorVersion: 10,
        minorVersion: 0,
        currentVersion: '6.3',
        currentBuild: '20348',
        currentBuildNumber: '20348',
        buildNumber: 20348,
        ubr: 0xa3c,
        displayVersion: '21H2',
        editionId: 'ServerDatacenter',
        installationType: 'Server',
        systemRoot: 'C:\\Windows',
      });
      assert.equal(facts.osinfo, 'win2k22');
      assert.equal(facts.hostname, 'win-srv2022');
      assert.equal(facts.system.currentControlSet, 'ControlSet002');
      assert.equal(facts.system.computerName, 'WIN-SRV2022');
      assert.equal(facts.system.tcpipHostname, 'win-srv2022');
      assert.deepEqual(
        facts.applications.map(({ lastWritten, ...a }) => {
          assert.ok(a.source === 'heuristic' || lastWritten !== undefined);
          return a;
        }),
        [
          {
            name: '{23170F69-40C1-2702-2301-000001000000}',
            displayName: '7-Zip 23.01 (x64 edition)',
            displayVersion: '23.01.00.0',
            publisher: 'Igor Pavlov',
            installLocation: 'C:\\Program Files\\7-Zip\\',
            urlInfoAbout: 'https://www.7-zip.org/',
            comments: 'file archiver',
            source: 'native',
          },
          { name: 'Ünïcødé App', displayName: 'Ünïcødé ☃ App', publisher: 'Ünïcødé Corp', source: 'native' },
          { name: 'Notepad++', displayName: 'Notepad++ (32-bit x86)', displayVersion: '8.6.2', publisher: 'Notepad++ Team', source: 'wow64' },
          { name: 'WinDefend', displayName: 'Microsoft Defender Antivirus', publisher: 'Microsoft Corporation', source: 'heuristic' },
        ],
      );
      // The drive letters, matched to what sfdisk and sgdisk say of the disks the data came from.
      assert.deepEqual(facts.system.driveMappings, [
        { letter: 'C', target: { kind: 'mbr', diskSignature: mbrDisk.labelId, partitionOffset: mbrDisk.startBytes } },
        { letter: 'D', target: { kind: 'gpt', partitionGuid: gptDisk.sgdiskGuid } },
        { letter: 'E', target: { kind: 'device', path: '\\??\\SCSI#CdRom&Ven_QEMU&Prod_QEMU_DVD-ROM#4&1f16ac6a&0&010000#{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}' } },
      ]);
      assert.equal(mbrDisk.labelId, '0x1a2b3c4d');
      assert.equal(facts.system.mountedDevices.length, 5);
      const volume = facts.system.mountedDevices.find((d) => d.volumeGuid);
      assert.equal(volume?.volumeGuid, '{6b29fc40-ca47-1067-b31d-00dd010662da}');
      assert.deepEqual(facts.system.mountedDevices.find((d) => d.name.startsWith('#'))?.target, { kind: 'unknown', length: 3, hex: '010203' });
      assert.deepEqual(facts.dirtyHives, []);
      assert.deepEqual(facts.warnings, []);
    });
  });

  it('before Windows 10: the version from CurrentVersion; a SYSTEM without Tcpip names the host by its computer name', async () => {
    const software = await openHive(
      await readFile(
        await buildHive(
          'SOFTWARE7',
          reg(PREFIX_SOFTWARE, [
            [CV, [`"ProductName"=${sz('Windows 7 Professional')}`, `"CurrentVersion"=${sz('6.1')}`, `"CurrentBuildNumber"=${sz('7601')}`, `"CurrentBuild"=${sz('7601')}`, `"EditionID"=${sz('Professional')}`, `"InstallationType"=${sz('Client')}`]],
            [`WOW6432Node\\Microsoft`, []],
          ]),
          PREFIX_SOFTWARE,
        ),
      ),
      { name: 'SOFTWARE7' },
    );
    const system = await openHive(
      await readFile(await buildHive('SYSTEM7', reg(PREFIX_SYSTEM, [['Select', ['"Current"=dword:00000001']], ['ControlSet001\\Control\\ComputerName\\ComputerName', [`"ComputerName"=${sz('WIN7-PC')}`]]]), PREFIX_SYSTEM)),
      { name: 'SYSTEM7' },
    );
    const facts = await windowsFacts({ software, system });
    assert.equal(facts.version.majorVersion, 6);
    assert.equal(facts.version.minorVersion, 1);
    assert.equal(facts.osinfo, 'win7');
    assert.equal(facts.hostname, 'WIN7-PC');
    assert.equal(facts.system.tcpipHostname, undefined);
    assert.deepEqual(facts.applications, []);
    assert.deepEqual(facts.system.driveMappings, []);
    assert.deepEqual(facts.warnings, []);
  });

  it('wrong types, missing keys and a damaged hive become warnings; the rest is still read', async () => {
    const path = await buildHive(
      'SOFTWARE-odd',
      reg(PREFIX_SOFTWARE, [
        [CV, ['"ProductName"=dword:00000001', '"CurrentMajorVersionNumber"=hex(4):0a,00', '"CurrentMinorVersionNumber"=dword:00000000', `"CurrentVersion"=${sz('6.3')}`, `"EditionID"=${sz('Core')}`]],
        [`${UNINSTALL}\\App`, [`"DisplayName"=${sz('App')}`]],
      ]),
      PREFIX_SOFTWARE,
    );
    const data = await readFile(path);
    const software = await openHive(data, { name: 'SOFTWARE' });
    // Damage the App subkey's key node signature: its listing fails, the version is still read.
    const app = (await software.key(`${UNINSTALL}\\App`))!;
    const damaged = Buffer.from(data);
    damaged.write('xx', 4096 + app.cell + 4, 'latin1');
    const facts = await windowsFacts({ software: await openHive(damaged, { name: 'SOFTWARE', live: true }), system: undefined });
    assert.equal(facts.version.productName, undefined);
    assert.equal(facts.version.majorVersion, 6, 'a 2-byte CurrentMajorVersionNumber is ignored: CurrentVersion decides');
    assert.equal(facts.version.editionId, 'Core');
    assert.equal(facts.osinfo, 'win8.1');
    assert.deepEqual(facts.applications, []);
    const messages = facts.warnings.map((w) => w.message);
    assert.ok(messages.includes('\\Microsoft\\Windows NT\\CurrentVersion ProductName is REG_DWORD, not a string: ignored'), messages.join('\n'));
    assert.ok(messages.some((m) => /CurrentMajorVersionNumber is REG_DWORD \(REG_DWORD with 2 bytes of data, not 4\), not a 32-bit number/.test(m)), messages.join('\n'));
    const damage = facts.warnings.find((w) => /registry hive is damaged/.test(w.message));
    assert.ok(damage, messages.join('\n'));
    assert.equal(damage.retryable, true);
    assert.match(damage.message, /^subkeys of \\Microsoft\\Windows\\CurrentVersion\\Uninstall: SOFTWARE: registry hive is damaged: key node of a subkey of \\Microsoft\\Windows\\CurrentVersion\\Uninstall at cell 0x/);

    const none = await windowsFacts({ software: await openHive(await readFile(await buildHive('empty', 'REGEDIT4\n\n'))), system: await openHive(await readFile(await buildHive('empty2', 'REGEDIT4\n\n'))) });
    assert.equal(none.osinfo, 'unknown');
    assert.deepEqual(
      none.warnings.map((w) => w.message),
      ['no \\Microsoft\\Windows NT\\CurrentVersion key: not a Windows SOFTWARE hive?', 'no \\Select Current value: the current control set is unknown (not a Windows SYSTEM hive?)'],
    );
  });

  it('the osinfo table of libguestfs', () => {
    const cases: Array<[Parameters<typeof windowsOsinfo>[0], string]> = [
      [{ majorVersion: 5, minorVersion: 1, productName: 'Microsoft Windows XP' }, 'winxp'],
      [{ majorVersion: 5, minorVersion: 2, productName: 'Microsoft Windows XP' }, 'winxp'],
      [{ majorVersion: 5, minorVersion: 2, productName: 'Microsoft Windows Server 2003 R2' }, 'win2k3r2'],
      [{ majorVersion: 5, minorVersion: 2, productName: 'Microsoft Windows Server 2003' }, 'win2k3'],
      [{ majorVersion: 6, minorVersion: 0, productName: 'Windows Vista (TM) Business' }, 'winvista'],
      [{ majorVersion: 6, minorVersion: 0, productName: 'Windows Server (R) 2008 Standard' }, 'winvista'],
      [{ majorVersion: 6, minorVersion: 0, installationType: 'Server' }, 'win2k8'],
      [{ majorVersion: 6, minorVersion: 1, installationType: 'Server Core' }, 'win2k8r2'],
      [{ majorVersion: 6, minorVersion: 1, installationType: 'Client' }, 'win7'],
      [{ majorVersion: 6, minorVersion: 2, installationType: 'Server' }, 'win2k12'],
      [{ majorVersion: 6, minorVersion: 2, installationType: 'Client' }, 'win8'],
      [{ majorVersion: 6, minorVersion: 3, installationType: 'Server' }, 'win2k12r2'],
      [{ majorVersion: 6, minorVersion: 3, installationType: 'Client' }, 'win8.1'],
      [{ majorVersion: 10, minorVersion: 0, installationType: 'Server', productName: 'Windows Server 2016 Standard' }, 'win2k16'],
      [{ majorVersion: 10, minorVersion: 0, installationType: 'Server', productName: 'Windows Server 2019 Datacenter' }, 'win2k19'],
      [{ majorVersion: 10, minorVersion: 0, installationType: 'Server Core', productName: 'Windows Server 2022 Standard' }, 'win2k22'],
      [{ majorVersion: 10, minorVersion: 0, installationType: 'Server', productName: 'Windows Server 2025 Datacenter' }, 'win2k25'],
      [{ majorVersion: 10, minorVersion: 0, installationType: 'Client', productName: 'Windows 10 Pro', buildNumber: 19045 }, 'win10'],
      // Windows 11 still calls itself "Windows 10 Pro" in ProductName: only the build tells.
      [{ majorVersion: 10, minorVersion: 0, installationType: 'Client', productName: 'Windows 10 Pro', buildNumber: 22631 }, 'win11'],
      [{ majorVersion: 10, minorVersion: 0, installationType: 'Client' }, 'unknown'],
      [{ majorVersion: 5, minorVersion: 0, productName: 'Microsoft Windows 2000' }, 'unknown'],
      [{}, 'unknown'],
    ];
    for (const [input, id] of cases) assert.equal(windowsOsinfo(input), id, JSON.stringify(input));
  });

  it('MountedDevices data forms', () => {
    assert.deepEqual(decodeMountedDevice('\\DosDevices\\c:', Buffer.from('4d3c2b1a0000100000000000', 'hex')), {
      name: '\\DosDevices\\c:',
      driveLetter: 'C',
      target: { kind: 'mbr', diskSignature: '0x1a2b3c4d', partitionOffset: 1048576 },
    });
    const huge = Buffer.from('4d3c2b1affffffffffffffff', 'hex');
    assert.equal(decodeMountedDevice('\\DosDevices\\F:', huge).target.kind, 'unknown');
    assert.deepEqual(decodeMountedDevice('\\DosDevices\\G:', Buffer.from('_??_USBSTOR#Disk\0', 'utf16le')).target, { kind: 'device', path: '_??_USBSTOR#Disk' });
    assert.equal(decodeMountedDevice('\\DosDevices\\GH:', Buffer.alloc(12)).driveLetter, undefined);
  });
});

