import assert from 'node:assert/strict';
import { parseDomainXml, DomainXmlError } from '../src/libvirt/domainXml.ts';
import { resolveVolumes } from '../src/libvirt/volumes.ts';
import { domainJob } from '../src/guest/guestJobs.ts';

const xml = `<domain type='kvm' id='3'>
  <name>web &amp; db</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web, "main".qcow2'/>
      <backingStore type='file'><format type='raw'/><source file='/var/lib/libvirt/images/base.raw'/></backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw'/>
      <source dev='/dev/vg0/data'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='pool/image'><host name='mon1' port='6789'/><host name='mon2'/><snapshot name='snap1'/><config file='/etc/ceph/ceph.conf'/></source>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source protocol='iscsi' name='iqn.2013-07.com.example:storage/3'>
        <host name='san.example' port='3261'/>
        <auth username='guest'><secret type='iscsi' usage='libvirtiscsi'/></auth>
        <initiator><iqn name='iqn.2013-07.com.example:host'/></initiator>
      </source>
      <target dev='vde' bus='virtio'/>
    </disk>
    <disk type='network' device='cdrom'>
      <source protocol='https' name='/isos/debian.iso' query='token=1'><host name='mirror.example'/><ssl verify='no'/></source>
      <target dev='sdb' bus='sata'/>
    </disk>
    <disk type='volume' device='disk'>
      <source pool='default' volume='extra.qcow2'/>
      <target dev='vdd' bus='virtio'/>
    </disk>
  </devices>
</domain>`;

describe('libvirt domain XML', () => {
  it('lists file, block and network disks in order, with their formats and what libvirt says of the network source', () => {
    const d = parseDomainXml(xml, 'test.xml');
    assert.equal(d.name, 'web & db');
    assert.equal(d.uuid, '4dea22b3-1d52-d8f3-2516-782e98ab3fa0');
    assert.deepEqual(d.disks, [
      { path: '/var/lib/libvirt/images/web, "main".qcow2', format: 'qcow2', device: 'disk', target: 'vda' },
      { path: '/dev/vg0/data', format: 'raw', device: 'disk', target: 'vdb' },
      {
        path: 'rbd:pool/image (mon1:6789)',
        format: 'raw',
        device: 'disk',
        target: 'vdc',
        network: { protocol: 'rbd', name: 'pool/image', hosts: [{ name: 'mon1', port: '6789', transport: undefined, socket: undefined }, { name: 'mon2', port: undefined, transport: undefined, socket: undefined }], snapshot: 'snap1', config: '/etc/ceph/ceph.conf' },
      },
      {
        path: 'https://mirror.example/isos/debian.iso?token=1',
        format: undefined,
        device: 'cdrom',
        target: 'sdb',
        network: { protocol: 'https', name: '/isos/debian.iso', hosts: [{ name: 'mirror.example', port: undefined, transport: undefined, socket: undefined }], query: 'token=1', sslVerify: false },
      },
      { path: 'pool default volume extra.qcow2', volume: { pool: 'default', name: 'extra.qcow2' }, format: undefined, device: 'disk', target: 'vdd' },
    ]);
  });

  it('reports a network disk that needs a libvirt secret as unsupported by name; skips an empty CD-ROM', () => {
    const d = parseDomainXml(xml, 'test.xml');
    assert.equal(d.unsupported.length, 1);
    const { reason, ...rest } = d.unsupported.find((u) => u.type === 'network')!;
    assert.deepEqual(rest, { type: 'network', target: 'vde', description: 'iscsi iscsi://san.example:3261/iqn.2013-07.com.example:storage/3' });
    assert.match(reason ?? '', /^authenticates with the libvirt secret iscsi libvirtiscsi, whose value libvirt gives only to read-write connections/);
  });

  it('keeps what libvirt says of an iSCSI source (user, initiator) for QEMU', async () => {
    const { networkBlockdev } = await import('@guestlens/nbd');
    const d = parseDomainXml(xml.replace(/<secret type='iscsi' usage='libvirtiscsi'\/>/, ''), 'test.xml');
    const iscsi = d.disks.find((x) => x.target === 'vde')!;
    assert.deepEqual(iscsi.network, { protocol: 'iscsi', name: 'iqn.2013-07.com.example:storage/3', hosts: [{ name: 'san.example', port: '3261', transport: undefined, socket: undefined }], username: 'guest', initiator: 'iqn.2013-07.com.example:host' });
    assert.deepEqual(networkBlockdev(iscsi.network!), { driver: 'iscsi', transport: 'tcp', portal: 'san.example:3261', target: 'iqn.2013-07.com.example:storage', lun: 3, user: 'guest', 'initiator-name': 'iqn.2013-07.com.example:host' });
  });

  it('resolves volume disks by what libvirt says of them: file and block read in place, the rest named', async () => {
    const d = parseDomainXml(xml, 'test.xml');
    const asked: string[][] = [];
    const answer = (stdout: string, exitCode = 0, stderr = '', code?: string) => ({ exitCode, stdout, stderr, code });
    const run = (reply: ReturnType<typeof answer>) => async (args: string[]) => {
      asked.push(args);
      return reply;
    };
    const file = await resolveVolumes(d, run(answer("<volume type='file'><name>extra.qcow2</name><target><path>/pool/extra.qcow2</path><format type='qcow2'/></target></volume>")));
    assert.deepEqual(asked, [['vol-dumpxml', '--pool', 'default', '--', 'extra.qcow2']]);
    assert.deepEqual(file.disks.at(-1), { path: '/pool/extra.qcow2', format: 'qcow2', device: 'disk', target: 'vdd' });
    assert.deepEqual(file.disks.slice(0, -1), d.disks.slice(0, -1), 'the other disks as they were, in order');
    const iso = await resolveVolumes(d, run(answer("<volume type='block'><target><path>/dev/sdz</path><format type='iso'/></target></volume>")));
    assert.deepEqual(iso.disks.at(-1), { path: '/dev/sdz', format: undefined, device: 'disk', target: 'vdd' }, 'a format QEMU would not read as an image format says nothing');
    const said = async (reply: ReturnType<typeof answer>) => {
      const r = await resolveVolumes(d, run(reply));
      assert.equal(r.disks.length, d.disks.length - 1);
      const u = r.unsupported.find((x) => x.type === 'volume')!;
      assert.equal(u.description, 'pool default volume extra.qcow2');
      return u.reason ?? '';
    };
    assert.match(await said(answer("<volume type='network'><target><path>rbd/extra</path></target></volume>")), /^a network volume \(rbd\/extra\); guestlens reads file and block volumes/);
    assert.match(await said(answer('', 1, "error: failed to get pool 'default'\n")), /libvirt cannot say where it is \(virsh vol-dumpxml --pool default -- extra\.qcow2: error: failed to get pool 'default'\)/);
    assert.match(await said(answer('', undefined, '', 'ENOENT')), /virsh is not installed \(Debian package libvirt-clients\).*give the volume's file with -a/);
    assert.match(await said(answer('<not-a-volume/>')), /printed no <volume> document/);
    assert.match(await said(answer("<volume type='file'><target><path>relative.img</path></target></volume>")), /no absolute path/);
    // Not resolved at all: the job says so instead of opening "pool default volume ..." as a file.
    const job = domainJob(d, { uuid: false, format: undefined });
    assert.ok(!job.images.some((i) => i.path.startsWith('pool ')));
    assert.ok(job.unreadable.some((u) => /disk vdd \(volume pool default volume extra\.qcow2\): libvirt was not asked/.test(u)));
  });

  it('rejects what is not a domain with a clear error', () => {
    assert.throws(() => parseDomainXml('<network><name>x</name></network>', 'net.xml'), (e: unknown) => e instanceof DomainXmlError && /net\.xml: not a libvirt domain XML/.test(e.message));
    assert.throws(() => parseDomainXml('<domain><devices/></domain>', 'noname.xml'), /noname\.xml: the domain has no <name>/);
    assert.throws(() => parseDomainXml('<domain><name>x</name>', 'torn.xml'), /torn\.xml: not valid XML/);
  });
});
