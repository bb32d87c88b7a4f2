/**
 * df -d DOMAIN through real virsh, against libvirt's built-in test driver
 * (test:///FILE: a whole fake hypervisor described by one XML file, no daemon).
 */
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
