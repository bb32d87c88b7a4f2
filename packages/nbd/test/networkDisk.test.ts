/**
 * libvirt's network-disk sources as QEMU blockdev options, protocol by
 * protocol (QAPI's shapes: BlockdevOptionsNbd, -Iscsi, -Rbd, -Gluster,
 * -CurlHttp(s)/-CurlFtp(s), -Ssh, -Nfs). That the real qemu-storage-daemon
 * takes these is tested in test/reader-network.test.ts.
 */
import assert from 'node:assert/strict';
import { networkBlockdev, networkDiskName, NetworkDiskError, type NetworkDisk } from '../src/index.ts';

const tcp = (name: string, port?: string) => ({ name, ...(port ? { port } : {}) });

describe('network disks as QEMU blockdev options', () => {
  const cases: [string, NetworkDisk, Record<string, unknown>, string][] = [
    ['nbd over TCP, default port', { protocol: 'nbd', name: 'exp', hosts: [tcp('nbd.example')] }, { driver: 'nbd', server: { type: 'inet', host: 'nbd.example', port: '10809' }, export: 'exp' }, 'nbd://nbd.example/exp'],
    ['nbd over a unix socket, no export name', { protocol: 'nbd', hosts: [{ transport: 'unix', socket: '/run/nbd.sock' }] }, { driver: 'nbd', server: { type: 'unix', path: '/run/nbd.sock' } }, 'nbd+unix:///?socket=/run/nbd.sock'],
    ['nbd over IPv6', { protocol: 'nbd', name: 'e', hosts: [tcp('::1', '10900')] }, { driver: 'nbd', server: { type: 'inet', host: '::1', port: '10900' }, export: 'e' }, 'nbd://[::1]:10900/e'],
    ['iscsi with a LUN and an initiator', { protocol: 'iscsi', name: 'iqn.2013-07.com.example:t/2', hosts: [tcp('san')], username: 'u', initiator: 'iqn.x:me' }, { driver: 'iscsi', transport: 'tcp', portal: 'san:3260', target: 'iqn.2013-07.com.example:t', lun: 2, user: 'u', 'initiator-name': 'iqn.x:me' }, 'iscsi://san/iqn.2013-07.com.example:t/2'],
    ['iscsi without a LUN (0)', { protocol: 'iscsi', name: 'iqn.2013-07.com.example:t', hosts: [tcp('san', '3300')] }, { driver: 'iscsi', transport: 'tcp', portal: 'san:3300', target: 'iqn.2013-07.com.example:t', lun: 0 }, 'iscsi://san:3300/iqn.2013-07.com.example:t'],
    ['rbd with a namespace, snapshot, config and monitors', { protocol: 'rbd', name: 'pool/ns/img', hosts: [tcp('mon1', '6789'), tcp('mon2')], snapshot: 's', config: '/etc/ceph/ceph.conf', username: 'admin' }, { driver: 'rbd', pool: 'pool', namespace: 'ns', image: 'img', snapshot: 's', conf: '/etc/ceph/ceph.conf', user: 'admin', server: [{ host: 'mon1', port: '6789' }, { host: 'mon2', port: '6789' }] }, 'rbd:pool/ns/img (mon1:6789)'],
    ['rbd without monitors (librbd finds them in its configuration)', { protocol: 'rbd', name: 'pool/img', hosts: [] }, { driver: 'rbd', pool: 'pool', image: 'img' }, 'rbd:pool/img'],
    ['gluster over TCP and a unix socket', { protocol: 'gluster', name: 'vol/dir/img.qcow2', hosts: [tcp('g1'), { transport: 'unix', socket: '/run/glusterd.sock' }] }, { driver: 'gluster', volume: 'vol', path: 'dir/img.qcow2', server: [{ type: 'inet', host: 'g1', port: '24007' }, { type: 'unix', path: '/run/glusterd.sock' }] }, 'gluster://g1/vol/dir/img.qcow2'],
    ['http with a query', { protocol: 'http', name: '/d/disk.img', query: 'a=1&b=2', hosts: [tcp('web', '8080')] }, { driver: 'http', url: 'http://web:8080/d/disk.img?a=1&b=2' }, 'http://web:8080/d/disk.img?a=1&b=2'],
    ['https without certificate checks', { protocol: 'https', name: 'disk.img', sslVerify: false, hosts: [tcp('web')] }, { driver: 'https', url: 'https://web:443/disk.img', sslverify: false }, 'https://web/disk.img'],
    ['ftp', { protocol: 'ftp', name: '/pub/disk.img', hosts: [tcp('ftp.example')] }, { driver: 'ftp', url: 'ftp://ftp.example:21/pub/disk.img' }, 'ftp://ftp.example/pub/disk.img'],
    ['ssh with a user', { protocol: 'ssh', name: '/var/lib/img.raw', username: 'root', hosts: [tcp('host', '2222')] }, { driver: 'ssh', server: { host: 'host', port: '2222' }, path: '/var/lib/img.raw', user: 'root' }, 'ssh://host:2222/var/lib/img.raw'],
    ['nfs', { protocol: 'nfs', name: '/export/img.raw', hosts: [tcp('filer')] }, { driver: 'nfs', server: { type: 'inet', host: 'filer' }, path: '/export/img.raw' }, 'nfs://filer/export/img.raw'],
  ];
  for (const [what, disk, blockdev, name] of cases) {
    it(what, () => {
      assert.deepEqual(networkBlockdev(disk), blockdev);
      assert.equal(networkDiskName(disk), name);
    });
  }

  it('refuses by name what cannot be read read-only or is not said fully', () => {
    const refused = (disk: NetworkDisk, re: RegExp) => assert.throws(() => networkBlockdev(disk), (e: unknown) => e instanceof NetworkDiskError && re.test(e.message));
    refused({ protocol: 'sheepdog', name: 'x', hosts: [tcp('h')] }, /sheepdog:\/\/h\/x: network protocol "sheepdog" is not one QEMU reads here/);
    refused({ protocol: 'iscsi', name: 'iqn.x:t', hosts: [tcp('h')], secret: 'iscsi s' }, /authenticates with the libvirt secret iscsi s/);
    refused({ protocol: 'nbd', name: 'x', hosts: [tcp('h')], tls: true }, /uses TLS/);
    refused({ protocol: 'nbd', name: 'x', hosts: [] }, /names no <host>/);
    refused({ protocol: 'nbd', hosts: [{ transport: 'unix' }] }, /unix-socket host without a socket path/);
    refused({ protocol: 'nbd', name: 'x', hosts: [{ name: 'h', transport: 'rdma' }] }, /host transport "rdma" is not one guestlens passes/);
    refused({ protocol: 'rbd', name: 'justimage', hosts: [] }, /rbd source name "justimage" is not POOL\/IMAGE/);
    refused({ protocol: 'gluster', name: 'novolume', hosts: [tcp('g')] }, /gluster source name "novolume" is not VOLUME\/PATH/);
    refused({ protocol: 'ssh', name: '/x', hosts: [tcp('h')], knownHosts: '/etc/kh' }, /names its own known_hosts file \/etc\/kh/);
    refused({ protocol: 'http', hosts: [tcp('h')] }, /has no source name/);
  });
});
