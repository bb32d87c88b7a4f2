/**
 * The forensic commands end to end on a real Debian guest (debootstrap):
 * ls -lR --json and copy-out against the kernel's read-only mounts of the
 * same bytes (root with /boot and /var mounted on it, as the guest's fstab
 * says), timeline against The Sleuth Kit's fls and mactime, inspect against
 * the guest's own dpkg database and Debian's virt-inspector, and the bad
 * inputs every command must name clearly.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, readlink, writeFile } from 'node:fs/promises';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { debianGuest, type DebianGuest } from './support/debianGuest.ts';
import { loopMountUnavailable } from './support/kernel.ts';
import { guardImages } from './support/imageGuard.ts';
import { guestlens, sh } from './support/run.ts';
import { scratchDir } from './support/scratch.ts';

interface Node {
  type: string;
  mode: number;
  size: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: string;
  target?: string;
  sha256?: string;
}

/** The kernel's view of a mounted tree: raw path (hex) → node. */
async function kernelTree(root: string): Promise<Map<string, Node>> {
  const out = new Map<string, Node>();
  const visit = async (rel: Buffer) => {
    const abs = rel.length === 1 ? Buffer.from(root) : Buffer.concat([Buffer.from(root), rel]);
    const st = await lstat(abs, { bigint: true });
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'chardev' : st.isBlockDevice() ? 'blockdev' : 'socket';
    const node: Node = { type, mode: Number(st.mode) & 0o7777, size: Number(st.size), uid: Number(st.uid), gid: Number(st.gid), nlink: Number(st.nlink), mtime: `${st.mtimeNs / 1_000_000_000n}.${String(st.mtimeNs % 1_000_000_000n).padStart(9, '0')}` };
    if (type === 'symlink') node.target = (await readlink(abs)).toString();
    if (type === 'file') node.sha256 = createHash('sha256').update(await readFile(abs)).digest('hex');
    out.set(rel.toString('hex'), node);
    if (type === 'directory') {
      for (const name of (await readdir(abs, { encoding: 'buffer' })) as Buffer[]) await visit(rel.length === 1 ? Buffer.concat([rel, name]) : Buffer.concat([rel, Buffer.from('/'), name]));
    }
  };
  await visit(Buffer.from('/'));
  return out;
}

describe('forensics on a Debian guest (kernel, TSK and virt-inspector as oracles)', function () {
  this.timeout(900_000);
  let g: DebianGuest;
  /** Mounted by this suite for all its tests (kernel.ts's helper unmounts after each test), unmounted in reverse. */
  const mounts: { dir: string; loop: string }[] = [];
  let mnt: string;

  before(async function () {
    const why = await loopMountUnavailable();
    if (why) {
      console.log(`      cannot run the forensic tests here: ${why}`);
      this.skip();
    }
    g = await debianGuest();
    const p = g.partitions;
    // The guest's tree as its kernel mounts it: root, then /boot and /var on it.
    mnt = scratchDir('debian-mount');
    for (const [part, at] of [[p.root, ''], [p.boot, 'boot'], [p.var, 'var']] as const) {
      const loop = (await sh('losetup', ['--find', '--show', '--read-only', '--offset', String(part.offset), '--sizelimit', String(part.size), g.disk])).trim();
      mounts.push({ dir: join(mnt, at), loop });
      await sh('mount', ['-o', 'ro', loop, join(mnt, at)]);
    }
    // The fstab mounts /var a second time, at /srv/data (by its partition's UUID).
    await sh('mount', ['--bind', '-o', 'ro', join(mnt, 'var'), join(mnt, 'srv/data')]);
    mounts.push({ dir: join(mnt, 'srv/data'), loop: '' });
  });

  after(async () => {
    for (const m of mounts.reverse()) {
      await execa('umount', [m.dir], { reject: false });
      if (m.loop) await execa('losetup', ['-d', m.loop], { reject: false });
    }
  });

  it('ls -lR --checksum=sha256 --json shows every path exactly as the kernel\'s mounts do (types, modes, owners, sizes, times to the nanosecond, targets, hashes)', async () => {
    const r = await guardImages([g.disk], () => guestlens(['ls', '--format', 'raw', g.disk, '/', '-lR', '--checksum=sha256', '--json']));
    assert.equal(r.exitCode, 3, 'the vfat ESP and an fstab line that names nothing are reported');
    assert.match(r.stderr, /\/dev\/sdz9 \(\/nowhere\): the guest has no device \/dev\/sdz9/);
    const ours = JSON.parse(r.stdout) as { path: string; pathHex?: string; type: string; mode: number; size: number; uid: number; gid: number; nlink: number; mtime: { sec: number; nsec: number }; target?: string; checksum?: { sha256: string } }[];
    const kernel = await kernelTree(mnt);
    const mine = new Map(ours.map((e) => [e.pathHex ?? Buffer.from(e.path).toString('hex'), e]));
    assert.deepEqual([...mine.keys()].sort(), [...kernel.keys()].sort(), 'the same paths');
    for (const [key, k] of kernel) {
      const o = mine.get(key)!;
      const got: Node = { type: o.type, mode: o.mode, size: o.size, uid: o.uid, gid: o.gid, nlink: o.nlink, mtime: `${o.mtime.sec}.${String(o.mtime.nsec).padStart(9, '0')}` };
      if (o.target !== undefined) got.target = o.target;
      if (o.checksum) got.sha256 = o.checksum.sha256;
      assert.deepEqual(got, k, Buffer.from(key, 'hex').toString('latin1'));
    }
    assert.ok(kernel.size > 1000, `a real root (${kernel.size} paths; ${g.origin})`);
  });

  it('copy-out of the whole tree equals the mounted tree (diff -r, modes, times, owners), links stay links, and nothing outside the target changes', async () => {
    const parent = scratchDir('copy-out');
    const target = join(parent, 'out');
    await mkdir(target);
    await writeFile(join(parent, 'bystander'), 'must not change\n');
    const others = () => readdirSync(parent).filter((n) => n !== 'out').map((n) => [n, statSync(join(parent, n)).mtimeMs, statSync(join(parent, n)).size]);
    const before = others();
    const r = await guardImages([g.disk], () => guestlens(['copy-out', '--format', 'raw', g.disk, '/', target]));
    assert.equal(r.exitCode, 3, r.stderr);
    assert.match(r.stderr, /\/srv\/forensic\/fifo: a FIFO, skipped/);
    assert.match(r.stderr, /null-dev: a device file, skipped/);
    assert.deepEqual(others(), before, 'nothing beside the target is touched');
    assert.equal((await readFile(join(parent, 'bystander'), 'utf8')), 'must not change\n');
    const diff = await execa('diff', ['-r', '--no-dereference', mnt, target], { reject: false });
    const kernelNodes = await kernelTree(mnt);
    // Device files and FIFOs are skipped (said on stderr): the only differences allowed.
    const special = (line: string) => {
      const m = /^Only in (.*): (.*)$/.exec(line);
      if (!m) return false;
      const rel = join(m[1], m[2]).slice(mnt.length) || '/';
      const n = kernelNodes.get(Buffer.from(rel).toString('hex'));
      return n !== undefined && ['fifo', 'chardev', 'blockdev', 'socket'].includes(n.type);
    };
    const lines = diff.stdout.split('\n').filter(Boolean).filter((l) => !special(l));
    assert.deepEqual(lines, [], `diff -r: ${diff.stdout.slice(0, 2000)}`);
    const kernel = await kernelTree(mnt);
    const copied = await kernelTree(target);
    for (const [key, k] of kernel) {
      if (k.type === 'fifo' || k.type === 'chardev') continue;
      const c = copied.get(key);
      assert.ok(c, `copied: ${Buffer.from(key, 'hex').toString('latin1')}`);
      const pick = (n: Node) => ({ type: n.type, mode: n.mode, uid: n.uid, gid: n.gid, size: n.type === 'directory' ? 0 : n.size, target: n.target, sha256: n.sha256, mtime: n.type === 'symlink' ? '' : n.mtime.slice(0, n.mtime.indexOf('.') + 7) });
      assert.deepEqual(pick(c!), pick(k), Buffer.from(key, 'hex').toString('latin1'));
    }
    assert.equal(await readlink(join(target, 'srv/forensic/to-shadow')), '/etc/shadow', 'a link to /etc/shadow is copied as that link, never followed');
    assert.equal(await readlink(join(target, 'srv/forensic/up-up-up')), '../../..');
    assert.equal((await lstat(join(target, 'srv/forensic/sparse'))).blocks * 512 < 1024 * 1024, true, 'the sparse file stays sparse');
    assert.equal((await lstat(join(target, 'srv/forensic/hard-a'))).ino, (await lstat(join(target, 'srv/forensic/hard-b'))).ino, 'hard links stay linked');
  });

  it('timeline equals The Sleuth Kit\'s fls -r -m / on the root filesystem, and mactime -b reads it', async () => {
    const p = g.partitions.root;
    const r = await guardImages([g.disk], () => guestlens(['timeline', '--format', 'raw', g.disk, '-m', p.device]));
    assert.equal(r.exitCode, 0, r.stderr);
    const fls = await sh('fls', ['-r', '-m', '/', '-u', '-o', String(p.offset / 512), g.disk]);
    // TSK writes "|" in names raw (breaking its own format); we write \x7c. Rows are compared as a set:
    // both walk directories depth first, but TSK's order within a directory is its own (mactime sorts by time anyway).
    // TSK writes control characters as "^" and bytes that are not UTF-8 as U+FFFD (both lossy); we write \xNN.
    const asTsk = (text: string) =>
      text.replace(/\\x([0-9a-f]{2})/g, (_, h: string) => {
        const b = parseInt(h, 16);
        return b === 0x7c ? '|' : b < 0x20 || b === 0x7f ? '^' : b >= 0x80 ? '\uFFFD' : String.fromCharCode(b);
      }).replace(/\\\\/g, '\\');
    const rows = (text: string) => text.split('\n').filter(Boolean).sort();
    assert.deepEqual(rows(asTsk(r.stdout)), rows(fls));
    assert.ok(r.stdout.split('\n').filter(Boolean).every((l) => l.split('|').length === 11), 'every row has eleven fields');
    const body = join(scratchDir('timeline'), 'body');
    await writeFile(body, r.stdout);
    const mactime = await sh('mactime', ['-b', body, '-d', '-y']);
    assert.ok(mactime.split('\n').filter(Boolean).length >= r.stdout.split('\n').filter(Boolean).length, 'mactime lists every row');
  });

  it('inspect reads the OS facts and the mount map, and every package of the guest\'s dpkg database', async () => {
    const r = await guardImages([g.disk], () => guestlens(['inspect', '--json', '--format', 'raw', g.disk]));
    const j = JSON.parse(r.stdout) as { operatingSystems: { root: string; distro: string; hostname: string; arch: string; machineId: string; osinfo: string; packageFormat: string; mountpoints: { device: string; mountpoint: string }[]; unmatchedFstab: { spec: string }[]; applications: { name: string; version: string; epoch?: number; release?: string; arch?: string }[] }[] };
    const os = j.operatingSystems[0];
    assert.deepEqual([os.root, os.distro, os.hostname, os.arch, os.machineId, os.osinfo, os.packageFormat], ['/dev/sda3', 'debian', g.hostname, 'x86_64', '0123456789abcdef0123456789abcdef', 'debian12', 'deb']);
    // In fstab order, as virt-inspector lists them.
    assert.deepEqual(os.mountpoints, [
      { device: '/dev/sda3', mountpoint: '/' },
      { device: '/dev/sda2', mountpoint: '/boot' },
      { device: '/dev/sda4', mountpoint: '/var' },
      { device: '/dev/sda1', mountpoint: '/boot/efi' },
      { device: '/dev/sda4', mountpoint: '/srv/data' },
    ]);
    assert.deepEqual(os.unmatchedFstab.map((u) => u.spec), ['/dev/sdz9']);
    const dpkg = await sh('dpkg-query', [`--admindir=${join(mnt, 'var/lib/dpkg')}`, '-W', '-f', '${db:Status-Status} ${Package} ${Version}\n']);
    const installed = dpkg.split('\n').filter((l) => l.startsWith('installed ')).map((l) => l.split(' ').slice(1).join(' ')).sort();
    const ours = os.applications.map((a) => `${a.name} ${a.epoch !== undefined ? `${a.epoch}:` : ''}${a.version}${a.release !== undefined ? `-${a.release}` : ''}`).sort();
    assert.deepEqual(ours, installed);
  });

  it('inspect --xml agrees with Debian\'s virt-inspector on the same guest', async function () {
    if ((await execa('which', ['virt-inspector'], { reject: false })).exitCode !== 0) {
      console.log('      (virt-inspector is not installed: libguestfs-tools)');
      this.skip();
    }
    const theirs = await execa('virt-inspector', ['--format=raw', '-a', g.disk], { reject: false, env: { LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' }, timeout: 600_000 });
    // virt-inspector exits 1 when it could not mount something the fstab names (our /nowhere line), and still prints its document.
    assert.match(theirs.stdout, /<operatingsystems>/, theirs.stderr);
    const ours = await guestlens(['inspect', '--xml', '--format', 'raw', g.disk]);
    const pick = (xml: string, tag: string) => [...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].map((m) => m[1]);
    for (const tag of ['root', 'name', 'arch', 'distro', 'major_version', 'minor_version', 'package_format', 'package_management', 'hostname', 'osinfo', 'version', 'release', 'epoch']) {
      assert.deepEqual(pick(ours.stdout, tag), pick(theirs.stdout, tag), tag);
    }
    // libguestfs follows neither by-partuuid names (it prints them as they are) nor devices that are missing.
    const mp = (xml: string) => [...xml.matchAll(/<mountpoint dev="([^"]*)">([^<]*)<\/mountpoint>/g)].map((m) => `${m[1]} ${m[2]}`).filter((s) => !s.includes('/nowhere') && !s.endsWith(' /srv/data'));
    // libguestfs lists mount points in an order of its own (neither fstab's nor sorted): compared as sets.
    assert.deepEqual(mp(ours.stdout).sort(), mp(theirs.stdout).sort());
  });

  it('names bad input clearly: a missing path, a directory to cat, a file to ls -R, a device file, a symlink loop', async () => {
    const run = (...args: string[]) => guestlens([...args.slice(0, 1), '--format', 'raw', g.disk, ...args.slice(1)]);
    const missing = await run('cat', '/etc/no-such-file');
    assert.equal(missing.exitCode, 1);
    assert.match(missing.stderr, /\/etc\/no-such-file: no such file or directory/);
    const dir = await run('cat', '/etc');
    assert.equal(dir.exitCode, 1);
    assert.match(dir.stderr, /:\/etc: is a directory/);
    const partial = await run('cat', '/etc/hostname', '/etc');
    assert.equal(partial.exitCode, 3);
    assert.equal(partial.stdout, `${g.hostname}\n`);
    const file = await run('ls', '/etc/hostname', '-R');
    assert.equal(file.exitCode, 1);
    assert.match(file.stderr, /\/etc\/hostname: not a directory/);
    const dev = await run('cat', '/srv/forensic/null-dev');
    assert.equal(dev.exitCode, 1);
    assert.match(dev.stderr, /not a regular file but a character device/);
    for (const r of [missing, dir, file, dev]) assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    const hostile = await run('ls', '/srv/forensic');
    assert.match(hostile.stdout, /^esc\\033\[31mred$/m, 'a terminal escape in a name is shown escaped');
    assert.match(hostile.stdout, /^latin1-\\351\\377\.txt$/m, 'bytes that are not UTF-8 are shown escaped');
    assert.match(hostile.stdout, /^\.\.\\n$/m);
    assert.doesNotMatch(hostile.stdout, /\x1b/);
  });
});

describe('forensics: guests with no operating system, -m, symlink loops', function () {
  this.timeout(120_000);

  it('reads a one-filesystem data disk without -m; asks for -m when there are several and no OS', async () => {
    const dir = scratchDir('no-os');
    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'data'), { recursive: true });
    await writeFile(join(tree, 'data/app.log'), 'line\n');
    const { symlinkSync } = await import('node:fs');
    symlinkSync('loop-b', join(tree, 'loop-a'));
    symlinkSync('loop-a', join(tree, 'loop-b'));
    const one = join(dir, 'one.img');
    await sh('truncate', ['-s', '16M', one]);
    await sh('mkfs.ext4', ['-q', '-F', '-d', tree, one]);
    const r = await guestlens(['cat', '--format', 'raw', one, '/data/app.log']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, 'line\n');
    const loop = await guestlens(['cat', '--format', 'raw', one, '/loop-a']);
    assert.equal(loop.exitCode, 1);
    assert.match(loop.stderr, /too many levels of symbolic links/);
    const two = join(dir, 'two.raw');
    await sh('truncate', ['-s', '40M', two]);
    await sh('sfdisk', ['-q', two], { input: 'label: dos\nstart=2048, size=16M, type=83\nsize=16M, type=83\n' });
    const part = join(dir, 'part.img');
    await sh('truncate', ['-s', '16M', part]);
    await sh('mkfs.ext4', ['-q', '-F', '-d', tree, part]);
    for (const seek of [1, 17]) await sh('dd', [`if=${part}`, `of=${two}`, 'bs=1M', `seek=${seek}`, 'conv=notrunc', 'status=none']);
    const many = await guestlens(['ls', '--format', 'raw', two, '/']);
    assert.equal(many.exitCode, 1);
    assert.match(many.stderr, /no operating system was found, and the guest has 2 filesystems: \/dev\/sda1 \(ext4\), \/dev\/sda2 \(ext4\); say which to read with -m/);
    const chosen = await guestlens(['ls', '--format', 'raw', two, '-m', '/dev/sda2', '/data']);
    assert.equal(chosen.exitCode, 0, chosen.stderr);
    assert.equal(chosen.stdout, 'app.log\n');
  });

  it('recognises a Windows guest by its Windows\\System32 tree, reads its registry (version, host name, drive letters, applications) and its paths case-insensitively', async function () {
    const { buildHive, hivexUnavailable } = await import('../packages/regf/test/hivex.ts');
    const why = await hivexUnavailable();
    const dir = scratchDir('windows-like');
    const tree = join(dir, 'tree');
    const config = join(tree, 'Windows/System32/config');
    await mkdir(config, { recursive: true });
    await writeFile(join(tree, 'Windows/win.ini'), '[fonts]\r\n');
    const partitionOffset = 1024 * 1024;
    // hivexregedit creates a key only under one that exists.
    const parents = (root: string, keys: string[]) => keys.map((k) => `[${root}\\${k}]\n\n`).join('');
    if (!why) {
      const cv = 'Microsoft\\Windows NT\\CurrentVersion';
      const software = await buildHive('SOFTWARE', `REGEDIT4\n\n${parents('HKEY_LOCAL_MACHINE\\SOFTWARE', ['Microsoft', 'Microsoft\\Windows NT', 'Microsoft\\Windows', 'Microsoft\\Windows\\CurrentVersion', 'Microsoft\\Windows\\CurrentVersion\\Uninstall'])}[HKEY_LOCAL_MACHINE\\SOFTWARE\\${cv}]\n"ProductName"="Windows Server 2022 Datacenter"\n"CurrentMajorVersionNumber"=dword:0000000a\n"CurrentMinorVersionNumber"=dword:00000000\n"CurrentBuildNumber"="20348"\n"EditionID"="ServerDatacenter"\n"InstallationType"="Server"\n\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\7-Zip]\n"DisplayName"="7-Zip 23.01 (x64)"\n"DisplayVersion"="23.01"\n"Publisher"="Igor Pavlov"\n"InstallLocation"="C:\\\\Program Files\\\\7-Zip\\\\"\n`);
      const offsetHex = Buffer.alloc(8);
      offsetHex.writeBigUInt64LE(BigInt(partitionOffset));
      const mounted = [...Buffer.from([0x78, 0x56, 0x34, 0x12]), ...offsetHex].map((x) => x.toString(16).padStart(2, '0')).join(',');
      const system = await buildHive('SYSTEM', `REGEDIT4\n\n${parents('HKEY_LOCAL_MACHINE\\SYSTEM', ['ControlSet001', 'ControlSet001\\Control', 'ControlSet001\\Control\\ComputerName', 'ControlSet001\\Services', 'ControlSet001\\Services\\Tcpip'])}[HKEY_LOCAL_MACHINE\\SYSTEM\\Select]\n"Current"=dword:00000001\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Control\\ComputerName\\ComputerName]\n"ComputerName"="WIN-FORENSIC"\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\Tcpip\\Parameters]\n"Hostname"="win-forensic"\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\MountedDevices]\n"\\\\DosDevices\\\\C:"=hex:${mounted}\n`, 'HKEY_LOCAL_MACHINE\\SYSTEM');
      const { copyFile } = await import('node:fs/promises');
      await copyFile(software, join(config, 'SOFTWARE'));
      await copyFile(system, join(config, 'SYSTEM'));
    } else {
      console.log(`      (no registry hives: ${why})`);
    }
    const fs = join(dir, 'c.img');
    await sh('truncate', ['-s', '16M', fs]);
    await sh('mkfs.ext4', ['-q', '-F', '-d', tree, fs]);
    const disk = join(dir, 'win.raw');
    await sh('truncate', ['-s', '18M', disk]);
    await sh('sfdisk', ['-q', disk], { input: `label: dos\nlabel-id: 0x12345678\nstart=${partitionOffset / 512}, size=16M, type=7\n` });
    await sh('dd', [`if=${fs}`, `of=${disk}`, 'bs=1M', 'seek=1', 'conv=notrunc', 'status=none']);
    const r = await guestlens(['inspect', '--json', '--format', 'raw', disk]);
    const os = (JSON.parse(r.stdout) as { operatingSystems: Record<string, unknown>[] }).operatingSystems[0] as { type: string; windowsSystemroot: string; productName?: string; majorVersion: number; hostname?: string; osinfo?: string; productVariant?: string; windowsCurrentControlSet?: string; driveMappings: unknown[]; applications: { name: string; displayName: string; version: string; publisher: string }[] };
    assert.deepEqual([os.type, os.windowsSystemroot], ['windows', '/Windows']);
    if (!why) {
      assert.deepEqual(
        [os.productName, os.majorVersion, os.hostname, os.osinfo, os.productVariant, os.windowsCurrentControlSet],
        ['Windows Server 2022 Datacenter', 10, 'win-forensic', 'win2k22', 'Server', 'ControlSet001'],
      );
      assert.deepEqual(os.driveMappings, [{ letter: 'C', device: '/dev/sda1' }]);
      assert.deepEqual(os.applications.map((a) => [a.name, a.displayName, a.version, a.publisher]), [['7-Zip', '7-Zip 23.01 (x64)', '23.01', 'Igor Pavlov']]);
      const xml = await guestlens(['inspect', '--xml', '--format', 'raw', disk]);
      assert.match(xml.stdout, /<drive_mappings>\n\s+<drive_mapping name="C">\/dev\/sda1<\/drive_mapping>/);
    }
    for (const path of ['C:\\Windows\\win.ini', 'c:\\WINDOWS\\WIN.INI', '/c/windows/win.ini']) {
      const cat = await guestlens(['cat', '--format', 'raw', disk, path]);
      assert.equal(cat.stdout, '[fonts]\r\n', path);
    }
  });
});
