/**
 * libvirt network disks (`<disk type='network'>`), read through QEMU's driver
 * for their protocol in guestlens's private qemu-storage-daemon:
 *  - nbd for real: qemu-nbd serves a guest disk over TCP (raw) and over a unix
 *    socket (the qcow2 file's bytes, with libvirt's <driver type='qcow2'>);
 *  - http for real: a small HTTP server with byte ranges, read by QEMU's curl;
 *  - iscsi, gluster, ssh, nfs, https: the command line we build is accepted by
 *    the real qemu-storage-daemon, which fails only at connecting (nothing
 *    listens on port 1), and the failure is said clearly;
 *  - what can't be read read-only (libvirt secrets, TLS) is refused by name.
 * df, ls and cat give what the same guest gives from its image file.
 */
import assert from 'node:assert/strict';
import { createReadStream, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { buildDisk, haveTool, toQcow2 } from './support/guestDisk.ts';
import { guardImages } from './support/imageGuard.ts';
import { freePort } from './support/net.ts';
import { startTracked, stop, waitFor, type Tracked } from './support/processes.ts';
import { guestlens, repoRoot, sh } from './support/run.ts';
import { runTmpDir, scratchDir } from './support/scratch.ts';

const dfRows = (out: string) => out.trim().split('\n').slice(1).map((l) => l.replace(/^\S+?:/, '').split(/\s+/).join(' '));

function domainXml(name: string, disk: string): string {
  return `<domain type='kvm'><name>${name}</name><memory>131072</memory><os><type>hvm</type></os><devices>${disk}</devices></domain>\n`;
}

/** An HTTP server of one file with byte ranges, as QEMU's curl driver needs (HEAD for the size, GET with Range). */
function rangeServer(file: string, port: number): Promise<Server> {
  const size = statSync(file).size;
  const server = createServer((req, res) => {
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const end = range && range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    res.setHeader('Accept-Ranges', 'bytes');
    if (range) res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    res.setHeader('Content-Length', String(end - start + 1));
    res.statusCode = range ? 206 : 200;
    if (req.method === 'HEAD') return res.end();
    createReadStream(file, { start, end }).pipe(res);
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

describe('libvirt network disks, read by QEMU (qemu-storage-daemon over NBD)', function () {
  this.timeout(180000);
  const dir = scratchDir('reader-network');
  let raw: string;
  let qcow2: string;
  let expected: string[];
  const servers: Tracked[] = [];
  let http: Server | undefined;
  const xml: Record<string, string> = {};

  const leftovers = () => readdirSync(runTmpDir()).filter((f) => f.startsWith('guestlens-nbd-'));
  const write = (name: string, disk: string) => {
    xml[name] = join(dir, `${name}.xml`);
    writeFileSync(xml[name], domainXml(name, disk));
    return xml[name];
  };

  before(async () => {
    const d = await buildDisk('net', 'gpt', [{ sizeMiB: 24, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'netdisk'], files: { 'etc/motd': 'over the network\n', 'var/data.bin': Buffer.alloc(2 << 20, 7) } } }]);
    raw = d.raw;
    qcow2 = await toQcow2(raw, join(dir, 'disk.qcow2'));
    const r = await guestlens(['df', raw]);
    assert.equal(r.exitCode, 0, r.stderr);
    expected = dfRows(r.stdout);

    const tcpPort = await freePort();
    const socket = join(dir, 'nbd.sock');
    // -r: read-only export; -t: keep serving after a client leaves (df, then ls, then cat).
    servers.push(startTracked('qemu-nbd', ['-r', '-t', '-f', 'raw', '-x', 'guest', '-b', '127.0.0.1', '-p', String(tcpPort), raw], { suite: true }));
    // The qcow2 file's own bytes, exported raw: libvirt's <driver type='qcow2'> makes QEMU read it as qcow2 on our side.
    servers.push(startTracked('qemu-nbd', ['-r', '-t', '-f', 'raw', '-k', socket, qcow2], { suite: true }));
    await waitFor('qemu-nbd on its unix socket', () => readdirSync(dir).includes('nbd.sock'));
    await waitFor('qemu-nbd on TCP', async () => (await sh('sh', ['-c', `ss -ltn 'sport = :${tcpPort}' | tail -n +2`])).trim() !== '');
    const httpPort = await freePort();
    http = await rangeServer(raw, httpPort);

    write('nbd-tcp', `<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='nbd' name='guest'><host name='127.0.0.1' port='${tcpPort}'/></source><target dev='vda' bus='virtio'/></disk>`);
    write('nbd-unix', `<disk type='network' device='disk'><driver name='qemu' type='qcow2'/><source protocol='nbd'><host transport='unix' socket='${socket}'/></source><target dev='vda' bus='virtio'/></disk>`);
    write('http', `<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='http' name='/${raw.split('/').pop()}'><host name='127.0.0.1' port='${httpPort}'/></source><target dev='vda' bus='virtio'/><readonly/></disk>`);
  });

  after(async () => {
    for (const s of servers) await stop(s);
    await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
  });

  it('nbd over TCP (raw) and over a unix socket (qcow2): df, ls and cat as from the image file, and no daemon left', async () => {
    await guardImages([raw, qcow2], async () => {
      for (const name of ['nbd-tcp', 'nbd-unix']) {
        const r = await guestlens(['df', '--domain-xml', xml[name]]);
        assert.equal(r.exitCode, 0, `${name}: ${r.stderr}`);
        assert.deepEqual(dfRows(r.stdout), expected, name);
        assert.match(r.stdout.split('\n')[1], new RegExp(`^${name}:`), 'rows are named by the domain');
      }
      const cat = await guestlens(['cat', '--domain-xml', xml['nbd-unix'], '/etc/motd']);
      assert.equal(cat.exitCode, 0, cat.stderr);
      assert.equal(cat.stdout, 'over the network\n');
      const ls = await guestlens(['ls', '--domain-xml', xml['nbd-tcp'], '/var']);
      assert.equal(ls.stdout, 'data.bin\n', ls.stderr);
    });
    assert.deepEqual(leftovers(), [], 'no qemu-storage-daemon directory left');
  });

  it('the exporter watches a libvirt domain whose disk is on the network, cycle after cycle', async function () {
    if (!(await haveTool('virsh'))) {
      console.log('      virsh is not installed (Debian package libvirt-clients): cannot test --libvirt');
      return this.skip();
    }
    const node = join(dir, 'node.xml');
    const disk = readFileSync(xml['nbd-tcp'], 'utf8').replace(/^.*<devices>|<\/devices>.*$/gs, '');
    writeFileSync(node, `<node><domain type='test'><name>netdom</name><uuid>bbbbbbbb-0000-0000-0000-000000000001</uuid><memory>1048576</memory><os><type>hvm</type></os><devices>${disk}</devices></domain></node>`);
    const port = await freePort();
    const exporter = startTracked(join(repoRoot, 'cli/bin/guestlens'), ['exporter', '--listen', `127.0.0.1:${port}`, '--libvirt', `test://${node}`, '--interval', '1']);
    const metrics = async () => fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10000) }).then((r) => r.text(), () => '');
    const cycles = (t: string) => Number(/^guestlens_exporter_refreshes_total(?:\{[^}]*\})? (\d+)/m.exec(t)?.[1] ?? 0);
    const size = JSON.parse((await guestlens(['df', '--json', raw])).stdout)[0].blocks * 1024;
    try {
      const first = await waitFor('the network disk read', async () => {
        const t = await metrics();
        return /^guestlens_guest_up\{guest="netdom"\} 1$/m.test(t) && t;
      }, 60000, 200);
      assert.match(first, new RegExp(`^guestlens_filesystem_size_bytes\\{[^}]*guest="netdom"[^}]*\\} ${size}$`, 'm'));
      const seen = cycles(first);
      await waitFor('two more cycles, still up', async () => {
        const t = await metrics();
        return cycles(t) >= seen + 2 && /^guestlens_guest_up\{guest="netdom"\} 1$/m.test(t);
      }, 30000, 200);
    } finally {
      await stop(exporter, 10000);
    }
    assert.deepEqual(leftovers(), [], 'the exporter stopped its daemon');
  });

  it('http: QEMU curl reads the disk by byte ranges; df as from the file', async () => {
    const r = await guestlens(['df', '--domain-xml', xml.http]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(dfRows(r.stdout), expected);
  });

  it('a qcow2 network disk is refused under --backing same-dir (QEMU would follow what it names), read under allow', async () => {
    const r = await guestlens(['df', '--backing', 'same-dir', '--domain-xml', xml['nbd-unix']]);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /nbd\+unix:\/\/\/\?socket=.*nbd\.sock: is a qcow2 network disk, whose backing files QEMU would open.*--backing same-dir refuses it/);
  });

  it('iscsi, gluster, ssh, nfs and https: QEMU takes the blockdev we build and fails only at connecting, said clearly', async function () {
    const host = `<host name='127.0.0.1' port='1'/>`;
    const cases: Record<string, string> = {
      iscsi: `<source protocol='iscsi' name='iqn.2013-07.com.example:target/2'>${host}<initiator><iqn name='iqn.2013-07.com.example:guestlens'/></initiator></source>`,
      gluster: `<source protocol='gluster' name='vol/images/guest.img'>${host}</source>`,
      ssh: `<source protocol='ssh' name='/var/lib/images/guest.img'>${host}</source>`,
      nfs: `<source protocol='nfs' name='/export/guest.img'><host name='127.0.0.1'/></source>`,
      https: `<source protocol='https' name='/guest.img'>${host}<ssl verify='no'/></source>`,
    };
    for (const [protocol, source] of Object.entries(cases)) {
      const file = write(`unreachable-${protocol}`, `<disk type='network' device='disk'><driver name='qemu' type='raw'/>${source}<target dev='vda'/></disk>`);
      const r = await guestlens(['df', '--domain-xml', file], { timeoutMs: 60000 });
      assert.equal(r.exitCode, 1, `${protocol}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`${protocol}(\\+unix)?:.*QEMU cannot reach it: .*check the host, the port and that the server is running`), protocol);
      assert.doesNotMatch(r.stderr, /Parameter|Invalid parameter|doesn't support the option|Unknown driver|\n\s+at /, protocol);
    }
    assert.deepEqual(leftovers(), []);
  });

  it('a disk that needs a libvirt secret or TLS, or names no host, is refused by name before QEMU starts (and the guest\'s other disks are still read: df.test.ts)', async () => {
    const secret = write('secret', `<disk type='network' device='disk'><source protocol='rbd' name='pool/guest'><host name='mon.example' port='6789'/><auth username='admin'><secret type='ceph' usage='client.admin secret'/></auth></source><target dev='vda'/></disk>`);
    const r1 = await guestlens(['df', '--domain-xml', secret]);
    assert.equal(r1.exitCode, 1);
    assert.match(r1.stderr, /disk vda \(rbd rbd:pool\/guest \(mon\.example:6789\)\): authenticates with the libvirt secret ceph client\.admin secret, whose value libvirt gives only to read-write connections/);
    const tls = write('tls', `<disk type='network' device='disk'><source protocol='nbd' name='x' tls='yes'><host name='127.0.0.1' port='10809'/></source><target dev='vda'/></disk>`);
    const r2 = await guestlens(['df', '--domain-xml', tls]);
    assert.equal(r2.exitCode, 1);
    assert.match(r2.stderr, /disk vda \(nbd nbd:\/\/127\.0\.0\.1:10809\/x\): uses TLS/);
    const nohost = write('nohost', `<disk type='network' device='disk'><source protocol='nbd' name='x'/><target dev='vda'/></disk>`);
    const r3 = await guestlens(['df', '--domain-xml', nohost]);
    assert.equal(r3.exitCode, 1);
    assert.match(r3.stderr, /names no <host> to read the nbd disk from/);
    assert.doesNotMatch(r1.stderr + r2.stderr + r3.stderr, /\n\s+at /);
  });
});
