/**
 * guestlens df on Windows-like guests: an MBR disk with a "System Reserved"
 * NTFS volume and C:, and a GPT disk with an EFI system partition (FAT),
 * a Microsoft reserved partition (no filesystem) and C:. Every NTFS
 * filesystem is listed with ntfs-3g's numbers (its read-only mount's
 * `stat -f`, what libguestfs's appliance shows, and so what virt-df prints).
 * The ESP's
 * FAT is another driver's: it is left out of the assertions here.
 */
import assert from 'node:assert/strict';
import { writeFile, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { buildDisk, toQcow2 } from './support/guestDisk.ts';
import { guardImages } from './support/imageGuard.ts';
import { guestlens } from './support/run.ts';
import { scratchDir } from './support/scratch.ts';
import { mkntfs, ntfs3gStatfs, ntfs3gUnavailable, withNtfs3g } from './support/ntfs3g.ts';
import { dfHeader, dfRow, type DfStat } from '../cli/src/df/dfOutput.ts';

const MBR_NTFS = '7';
const GPT_BASIC_DATA = 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7';
const GPT_MSR = 'E3C9E316-0B5C-4DB8-817D-F92DF00215AE';
const tcg = { LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' };

/** An NTFS volume laid out a little like Windows', made with mkntfs and filled through ntfs-3g. */
async function windowsVolume(name: string, sizeMiB: number, label: string, system: boolean): Promise<string> {
  const image = await mkntfs(join(scratchDir(`win-${name}`), `${name}.img`), { sizeMiB, label });
  await withNtfs3g(image, { readWrite: true }, async (m) => {
    if (system) {
      await mkdir(join(m, 'Boot'));
      await writeFile(join(m, 'bootmgr'), Buffer.alloc(400_000, 0x4d));
      await writeFile(join(m, 'Boot', 'BCD'), Buffer.alloc(32_768, 1));
      return;
    }
    await mkdir(join(m, 'Windows', 'System32', 'config'), { recursive: true });
    await mkdir(join(m, 'Users', 'Default', 'Documents'), { recursive: true });
    await mkdir(join(m, 'Program Files', 'App'), { recursive: true });
    await writeFile(join(m, 'Windows', 'System32', 'config', 'SOFTWARE'), Buffer.alloc(2 * 1024 * 1024, 0x72));
    await writeFile(join(m, 'Windows', 'System32', 'ntoskrnl.exe'), Buffer.alloc(3 * 1024 * 1024, 0x90));
    await writeFile(join(m, 'pagefile.sys'), Buffer.alloc(16 * 1024 * 1024, 0));
    await writeFile(join(m, 'Users', 'Default', 'Documents', 'notes.txt'), 'hello from C:\n');
  });
  return image;
}

describe('guestlens df on Windows-like guests (ntfs-3g oracle)', function () {
  this.timeout(900_000);
  let mbr: { qcow2: string; expected: Map<string, DfStat> };
  let gpt: { raw: string; expected: Map<string, DfStat> };

  before(async function () {
    const why = await ntfs3gUnavailable();
    if (why) {
      console.log(`      ntfs-3g cannot be used here (${why}): no oracle`);
      this.skip();
    }
    const reserved = await windowsVolume('system-reserved', 50, 'System Reserved', true);
    const c = await windowsVolume('c', 300, 'Windows', false);
    const c2 = await windowsVolume('c-gpt', 260, 'OS', false);
    const [reservedStat, cStat, c2Stat] = [await ntfs3gStatfs(reserved), await ntfs3gStatfs(c), await ntfs3gStatfs(c2)];
    const mbrDisk = await buildDisk('windows-mbr', 'dos', [
      { sizeMiB: 50, type: MBR_NTFS, content: { image: reserved } },
      { sizeMiB: 300, type: MBR_NTFS, content: { image: c } },
    ]);
    mbr = { qcow2: await toQcow2(mbrDisk.raw), expected: new Map([['/dev/sda1', reservedStat], ['/dev/sda2', cStat]]) };
    const gptDisk = await buildDisk('windows-gpt', 'gpt', [
      { sizeMiB: 64, type: 'uefi', content: { mkfs: 'mkfs.vfat', args: ['-F', '32', '-n', 'ESP'] } },
      { sizeMiB: 16, type: GPT_MSR, content: { empty: true } },
      { sizeMiB: 260, type: GPT_BASIC_DATA, content: { image: c2 } },
    ]);
    gpt = { raw: gptDisk.raw, expected: new Map([['/dev/sda3', c2Stat]]) };
  });

  it('lists both NTFS volumes of the MBR guest with ntfs-3g\'s numbers, in text, CSV, -i and JSON', async () => {
    const name = basename(mbr.qcow2);
    for (const opts of [
      { human: false, inodes: false, csv: false },
      { human: false, inodes: false, csv: true },
      { human: false, inodes: true, csv: false },
      { human: true, inodes: false, csv: false },
    ]) {
      const flags = [...(opts.csv ? ['--csv'] : []), ...(opts.inodes ? ['-i'] : []), ...(opts.human ? ['-h'] : [])];
      const r = await guardImages([mbr.qcow2], () => guestlens(['df', ...flags, mbr.qcow2]));
      assert.equal(r.stderr, '');
      assert.equal(r.exitCode, 0);
      let expected = dfHeader(opts);
      for (const [device, st] of mbr.expected) expected += dfRow(name, device, st, opts);
      assert.equal(r.stdout, expected, flags.join(' '));
    }
    const json = await guestlens(['df', '--json', mbr.qcow2]);
    assert.equal(json.exitCode, 0, json.stderr);
    const rows = JSON.parse(json.stdout) as Record<string, unknown>[];
    assert.deepEqual(rows.map((x) => [x.device, x.fstype, x.label, x.exact]), [['/dev/sda1', 'ntfs', 'System Reserved', true], ['/dev/sda2', 'ntfs', 'Windows', true]]);
    for (const row of rows) assert.match(String(row.uuid), /^[0-9A-F]{16}$/);
  });

  it('lists C: of the GPT guest (ESP + MSR + C:) with ntfs-3g\'s numbers; the MSR is skipped', async () => {
    const r = await guardImages([gpt.raw], () => guestlens(['df', '--csv', gpt.raw]));
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], dfHeader({ human: false, inodes: false, csv: true }).trim());
    const st = gpt.expected.get('/dev/sda3')!;
    assert.ok(lines.includes(dfRow(basename(gpt.raw), '/dev/sda3', st, { human: false, inodes: false, csv: true }).trim()), r.stdout);
    assert.ok(!lines.some((l) => l.includes('/dev/sda2')), 'the Microsoft reserved partition holds no filesystem');
    // The ESP is FAT: read by another driver, or reported as not readable yet; nothing else may be wrong.
    for (const line of r.stderr.split('\n').filter(Boolean)) assert.match(line, /\/dev\/sda1/);
    assert.ok(r.exitCode === 0 || r.exitCode === 3, `exit ${r.exitCode}: ${r.stderr}`);
  });

  it('says once, on stderr, that a hibernated C: holds changes not yet on disk, and still prints ntfs-3g\'s numbers', async () => {
    const c = await windowsVolume('c-hibernated', 120, 'Windows', false);
    await withNtfs3g(c, { readWrite: true }, (m) => writeFile(join(m, 'hiberfil.sys'), Buffer.concat([Buffer.from('HIBR'), Buffer.alloc(8192, 7)])));
    const st = await ntfs3gStatfs(c);
    const disk = await buildDisk('windows-hibernated', 'dos', [{ sizeMiB: 120, type: MBR_NTFS, content: { image: c } }]);
    const r = await guardImages([disk.raw], () => guestlens(['df', disk.raw]));
    const opts = { human: false, inodes: false, csv: false };
    assert.equal(r.stdout, dfHeader(opts) + dfRow(basename(disk.raw), '/dev/sda1', st, opts));
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /\/dev\/sda1: figures may differ .*hiberfil\.sys/);
  });

  // No virt-df call here (each boots an appliance, 20-40 s under TCG): virt-df's NTFS figures are ntfs-3g's statfs,
  // which the tests above compare with; its text and CSV layouts are compared on the LVM, btrfs and two-disk guests.
});
