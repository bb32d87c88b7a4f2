/**
 * inspect on RPM guests: a real RPM database (rpmdb.sqlite) written by rpm
 * itself (Debian's rpm 4.18 with the sqlite backend, packages built by
 * rpmbuild and registered with --justdb) inside a Fedora-like root; `rpm
 * -qa` over the same database is the oracle for every package's name,
 * epoch, version, release and architecture. An old BerkeleyDB database is
 * named as unsupported, not read as an empty list.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildDisk, haveTool } from './support/guestDisk.ts';
import { guardImages } from './support/imageGuard.ts';
import { guestlens, sh } from './support/run.ts';
import { scratchDir } from './support/scratch.ts';

interface Os {
  distro: string;
  packageFormat: string;
  applications: { name: string; version: string; epoch?: number; release?: string; arch?: string; summary?: string }[];
  applicationsProblem?: string;
}

const OS_RELEASE = 'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=39\nPRETTY_NAME="Fedora Linux 39 (Server Edition)"\n';

describe('guestlens inspect: RPM databases', function () {
  this.timeout(180000);

  it('lists every package of an rpmdb.sqlite written by rpm, as rpm -qa does', async function () {
    if (!(await haveTool('rpmbuild')) || !(await haveTool('rpm'))) {
      console.log('      rpm/rpmbuild are not installed (Debian package rpm): cannot build an RPM database');
      return this.skip();
    }
    const dir = scratchDir('rpm');
    const root = join(dir, 'root');
    const top = join(dir, 'build');
    mkdirSync(root);
    const rpmArgs = ['--root', root, '--dbpath', '/var/lib/rpm', '--define', '_db_backend sqlite'];
    await sh('rpm', [...rpmArgs, '--initdb']);
    const packages = [
      { name: 'bash', version: '5.2.26', release: '3.fc39', epoch: 0, arch: 'noarch' },
      { name: 'openssl-libs', version: '3.1.1', release: '4.fc39', epoch: 1, arch: 'noarch' },
      { name: 'kernel-core', version: '6.8.9', release: '100.fc39', epoch: 0, arch: 'noarch' },
    ];
    for (const p of packages) {
      const spec = join(dir, `${p.name}.spec`);
      writeFileSync(spec, [`Name: ${p.name}`, `Version: ${p.version}`, `Release: ${p.release}`, ...(p.epoch ? [`Epoch: ${p.epoch}`] : []), `Summary: The ${p.name} test package`, 'License: MIT', 'BuildArch: noarch', '%description', `A tiny package named ${p.name}.`, '%files', ''].join('\n'));
      await sh('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${top}`, spec]);
    }
    const rpms = readdirSync(join(top, 'RPMS', 'noarch')).map((f) => join(top, 'RPMS', 'noarch', f));
    await sh('rpm', [...rpmArgs, '-i', '--nodeps', '--justdb', '--noscripts', ...rpms]);
    const oracle = (await sh('rpm', [...rpmArgs, '-qa', '--qf', '%{NAME} %{EPOCHNUM} %{VERSION} %{RELEASE} %{ARCH}\\n'])).trim().split('\n').sort();
    assert.equal(oracle.length, packages.length);
    const db = readFileSync(join(root, 'var/lib/rpm/rpmdb.sqlite'));
    const disk = await buildDisk('fedora', 'gpt', [{ sizeMiB: 16, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'root'], files: { 'etc/os-release': OS_RELEASE, 'etc/hostname': 'f39\n', 'etc/fstab': 'LABEL=root / ext4 defaults 0 1\n', 'var/lib/rpm/rpmdb.sqlite': db } } }]);
    const r = await guardImages([disk.raw], () => guestlens(['inspect', '--json', '--format', 'raw', disk.raw]));
    assert.equal(r.exitCode, 0, r.stderr);
    const os = (JSON.parse(r.stdout) as { operatingSystems: Os[] }).operatingSystems[0];
    assert.equal(os.distro, 'fedora');
    assert.equal(os.packageFormat, 'rpm');
    const ours = os.applications.map((a) => `${a.name} ${a.epoch ?? 0} ${a.version} ${a.release} ${a.arch}`).sort();
    assert.deepEqual(ours, oracle);
    assert.equal(os.applications.find((a) => a.name === 'bash')?.summary, 'The bash test package');
  });

  it('names a BerkeleyDB Packages database as unsupported instead of listing nothing', async () => {
    // The first page of a BerkeleyDB hash database: its magic at byte 12.
    const bdb = Buffer.alloc(4096);
    bdb.writeUInt32LE(0x061561, 12);
    const disk = await buildDisk('centos7', 'dos', [{ sizeMiB: 16, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F'], files: { 'etc/os-release': 'ID="centos"\nVERSION_ID="7"\nPRETTY_NAME="CentOS Linux 7 (Core)"\n', 'var/lib/rpm/Packages': bdb } } }]);
    const r = await guestlens(['inspect', '--json', '--format', 'raw', disk.raw]);
    const text = `${r.stdout}\n${r.stderr}`;
    assert.match(text, /\/var\/lib\/rpm\/Packages is .*BerkeleyDB.*; guestlens reads only RPM's SQLite database \(rpmdb\.sqlite\), so no packages are listed/);
    assert.ok(r.exitCode === 0 || r.exitCode === 3, `exit ${r.exitCode}: ${r.stderr}`);
  });
});
