/**
 * The exporter against a real libvirt: libvirtd's QEMU driver (Debian's
 * libvirt-daemon-system, started by the test when it is installed and not
 * running) defines a domain whose disk is a fixture and starts it under TCG
 * (no OS on the disk: the VM sits in its firmware, holding the disk
 * read-write as any running VM does). The exporter finds it with --libvirt
 * qemu:///system, reads its filesystem while it runs, and names the QEMU
 * that holds the image. Skipped, saying why, where libvirtd cannot run.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { freePort } from './support/net.ts';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDisk, haveTool, toQcow2 } from './support/guestDisk.ts';
import { startTracked, stop, waitFor, type Tracked } from './support/processes.ts';
import { guestlens, repoRoot } from './support/run.ts';
import { scratchDir, scratchRoot } from './support/scratch.ts';

const URI = 'qemu:///system';
const virsh = (...args: string[]) => execa('virsh', ['-c', URI, ...args], { reject: false, timeout: 60000 });


describe('guestlens exporter --libvirt against libvirtd running a TCG domain', function () {
  this.timeout(180000);
  const started: string[] = [];
  const domain = `gltest-${process.pid}`;
  let exporter: Tracked | undefined;
  let defined = false;

  after(async () => {
    if (exporter) await stop(exporter, 10000);
    if (defined) {
      await virsh('destroy', domain);
      await virsh('undefine', domain);
    }
    for (const daemon of started) await execa('pkill', ['-x', daemon], { reject: false });
  });

  it('finds the running domain, reads its disk while QEMU holds it, and names the holder', async function () {
    if (!existsSync('/usr/sbin/libvirtd') || !(await haveTool('virsh'))) {
      console.log('      libvirtd is not installed (Debian package libvirt-daemon-system): the test:/// driver test covers discovery');
      return this.skip();
    }
    if ((await virsh('list', '--all')).exitCode !== 0) {
      for (const daemon of ['virtlogd', 'libvirtd']) {
        const r = await execa(`/usr/sbin/${daemon}`, ['-d'], { reject: false });
        if (r.exitCode !== 0) {
          console.log(`      ${daemon} cannot run here (${String(r.stderr).trim()}): skipped`);
          return this.skip();
        }
        started.push(daemon);
      }
      await waitFor('libvirtd', async () => (await virsh('list', '--all')).exitCode === 0, 20000, 250).catch(() => undefined);
    }
    if ((await virsh('list', '--all')).exitCode !== 0) {
      console.log(`      libvirtd does not answer on ${URI}: skipped`);
      return this.skip();
    }
    // The scratch tree must be reachable by libvirt's QEMU (it runs as root here, but checks paths).
    chmodSync(scratchRoot(), 0o755);
    const d = await buildDisk('vmdisk', 'gpt', [{ sizeMiB: 16, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'vmroot'] } }]);
    const image = await toQcow2(d.raw, join(scratchDir('libvirtd'), 'vm.qcow2'));
    const xml = join(scratchDir('libvirtd-xml'), 'domain.xml');
    writeFileSync(xml, `<domain type='qemu'><name>${domain}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
      <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
      <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${image}'/><target dev='vda' bus='virtio'/></disk></devices></domain>`);
    const def = await virsh('define', xml);
    assert.equal(def.exitCode, 0, String(def.stderr));
    defined = true;
    const start = await virsh('start', domain);
    if (start.exitCode !== 0) {
      console.log(`      libvirt cannot start a TCG domain here (${String(start.stderr).trim()}): only discovery of the defined domain is tested`);
    }
    const running = start.exitCode === 0;
    const port = await freePort();
    exporter = startTracked(join(repoRoot, 'cli', 'bin', 'guestlens'), ['exporter', '--listen', `127.0.0.1:${port}`, '--libvirt', URI, '--interval', '1'], { suite: true });
    const metrics = async () => {
      try {
        return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      } catch {
        return '';
      }
    };
    const text = await waitFor('the domain in the metrics', async () => {
      const t = await metrics();
      return new RegExp(`^guestlens_guest_up\\{guest="${domain}"\\} 1$`, 'm').test(t) && (!running || /guestlens_image_in_use\{/.test(t)) ? t : undefined;
    }, 60000, 250);
    const df = JSON.parse((await guestlens(['df', '--json', '-c', URI, '-d', domain])).stdout) as { blocks: number; bsize: number }[];
    assert.match(text, new RegExp(`^guestlens_filesystem_size_bytes\\{guest="${domain}",device="/dev/sda1",fstype="ext4",mountpoint="",label="vmroot",uuid="[0-9a-f-]+"\\} ${df[0].blocks * df[0].bsize}$`, 'm'));
    if (running) assert.match(text, new RegExp(`^guestlens_image_in_use\\{guest="${domain}",image="${image.replace(/[.]/g, '\\.')}",holder="qemu-system-x86_64 \\(pid \\d+\\)",access="read-write"\\} 1$`, 'm'));
  });
});
