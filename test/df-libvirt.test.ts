/**
 * df -d DOMAIN through real virsh, against libvirt's built-in test driver
 * (test:///FILE: a whole fake hypervisor described by one XML file, no daemon).
 */
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildDisk, haveTool, toQcow2 } from './support/guestDisk.ts';
import { guestlens } from './support/run.ts';
import { scratchDir } from './support/scratch.ts';

describe('guestlens df -d (libvirt)', function () {
  this.timeout(120000);
  let uri: string;

  before(async function () {
    if (!(await haveTool('virsh'))) {
      console.log('      virsh is not installed (Debian package libvirt-clients): cannot test -d');
      this.skip();
    }
    const a = await buildDisk('lv-a', 'gpt', [{ sizeMiB: 8, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'root'] } }]);
    const b = await buildDisk('lv-b', 'dos', [{ sizeMiB: 8, content: { mkfs: 'mkfs.ext2', args: ['-q', '-F'] } }]);
    const aq = await toQcow2(a.raw);
    const node = join(scratchDir('libvirt'), 'node.xml');
    writeFileSync(
      node,
      `<node>
        <domain type='test'><name>db01</name><uuid>aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee</uuid>
          <memory>1048576</memory><os><type>hvm</type></os>
          <devices>
            <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${aq}'/><target dev='vda'/></disk>
            <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='${b.raw}'/><target dev='vdb'/></disk>
          </devices>
        </domain>
      </node>`,
    );
    uri = `test://${node}`;
  });

  it('reads the disks virsh -r dumpxml lists, named by the domain', async () => {
    const r = await guestlens(['df', '--csv', '-c', uri, '-d', 'db01']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').slice(1).map((l) => l.split(',').slice(0, 2).join(',')), ['db01,/dev/sda1', 'db01,/dev/sdb1']);
  });

  it('reads storage-pool volume disks where libvirt says they are (vol-dumpxml), in the domain\'s disk order; a volume libvirt cannot find is named, exit 3', async () => {
    const dir = scratchDir('libvirt-pool');
    const a = await buildDisk('pool-a', 'gpt', [{ sizeMiB: 8, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'root'] } }]);
    const b = await buildDisk('pool-b', 'dos', [{ sizeMiB: 8, content: { mkfs: 'mkfs.ext2', args: ['-q', '-F'] } }]);
    const aq = await toQcow2(a.raw);
    const volume = (name: string, path: string, format: string) =>
      `<volume type='file'><name>${name}</name><key>${path}</key><capacity>8388608</capacity><target><path>${path}</path><format type='${format}'/></target></volume>`;
    const node = join(dir, 'node.xml');
    writeFileSync(
      node,
      `<node>
        <domain type='test'><name>web01</name><memory>1048576</memory><os><type>hvm</type></os>
          <devices>
            <disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='vms' volume='root.qcow2'/><target dev='vda'/></disk>
            <disk type='volume' device='disk'><source pool='vms' volume='data.raw'/><target dev='vdb'/></disk>
            <disk type='volume' device='disk'><driver name='qemu' type='raw'/><source pool='nopool' volume='x.img'/><target dev='vdc'/></disk>
          </devices>
        </domain>
        <pool type='dir'><name>vms</name><uuid>35bb2ad9-388a-cdfe-461a-b8907f6e53fe</uuid>
          <capacity>107374182400</capacity><allocation>0</allocation><available>107374182400</available><source/>
          <target><path>${dir}</path></target>
          ${volume('root.qcow2', aq, 'qcow2')}${volume('data.raw', b.raw, 'raw')}
        </pool>
      </node>`,
    );
    const pooled = `test://${node}`;
    const r = await guestlens(['df', '--csv', '-c', pooled, '-d', 'web01']);
    assert.equal(r.exitCode, 3, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').slice(1).map((l) => l.split(',').slice(0, 2).join(',')), ['web01,/dev/sda1', 'web01,/dev/sdb1']);
    assert.match(r.stderr, /disk vdc \(volume pool nopool volume x\.img\): libvirt cannot say where it is \(virsh vol-dumpxml --pool nopool -- x\.img: .*nopool/);
    // A saved XML names the same volumes: they are looked up in the libvirt -c names.
    const saved = join(dir, 'web01.xml');
    writeFileSync(saved, (await execa('virsh', ['-r', '-c', pooled, 'dumpxml', 'web01'])).stdout);
    const fromFile = await guestlens(['df', '--csv', '-c', pooled, '--domain-xml', saved]);
    assert.equal(fromFile.stdout, r.stdout);
    assert.equal(fromFile.exitCode, 3);
  });

  it('names an unknown domain and what virsh said, exit 1', async () => {
    const r = await guestlens(['df', '-c', uri, '-d', 'nosuch']);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /virsh .*nosuch.* failed: error: failed to get domain 'nosuch'/);
  });

  it('says which package to install when virsh is missing', async () => {
    // A PATH holding node but no virsh.
    const bin = scratchDir('novirsh');
    mkdirSync(bin, { recursive: true });
    symlinkSync(process.execPath, join(bin, 'node'));
    const r = await guestlens(['df', '-d', 'db01'], { env: { PATH: bin } });
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /virsh is not installed \(Debian package libvirt-clients\)/);
  });
});
