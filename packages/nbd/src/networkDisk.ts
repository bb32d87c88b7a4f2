/**
 * A disk that lives on the network (libvirt's `<disk type='network'>`): what
 * libvirt's XML says about it, and the QEMU blockdev options of the protocol
 * driver that reads it (nbd, iscsi, rbd, gluster, curl's http/https/ftp/ftps,
 * ssh, nfs). guestlens speaks none of these protocols itself: QEMU does, in
 * the private qemu-storage-daemon of storageDaemon.ts, and exports the disk
 * to us over a unix-socket NBD export as it does for files.
 *
 * What can't be done read-only from the host is refused here, by name, before
 * QEMU starts: libvirt secrets (their values are only given to read-write
 * connections), and TLS (the credentials live in libvirt's PKI directories
 * and are QEMU's, not the caller's).
 */
import { NbdError } from './errors.ts';

export const NETWORK_PROTOCOLS = ['nbd', 'iscsi', 'rbd', 'gluster', 'http', 'https', 'ftp', 'ftps', 'ssh', 'nfs'] as const;
export type NetworkProtocol = (typeof NETWORK_PROTOCOLS)[number];

export interface NetworkHost {
  /** Host name or address (absent for unix sockets). */
  name?: string;
  /** As libvirt writes it; the protocol's default when absent. */
  port?: string;
  /** 'tcp' (default), 'unix' or 'rdma'. */
  transport?: string;
  /** Socket path, for transport 'unix'. */
  socket?: string;
}

export interface NetworkDisk {
  protocol: string;
  /** libvirt's source name: the NBD export, iSCSI target[/lun], pool/image, volume/path, or URL path. */
  name?: string;
  hosts: NetworkHost[];
  /** `<source tls='yes'>`. */
  tls?: boolean;
  /** `<auth username=...>`. */
  username?: string;
  /** `<auth><secret usage=... | uuid=...>`: the libvirt secret the disk authenticates with, for messages. */
  secret?: string;
  /** http(s)/ftp(s): `<source query=...>`. */
  query?: string;
  /** https/ftps: `<ssl verify='no'>` gives false. */
  sslVerify?: boolean;
  /** rbd: `<snapshot name=...>`. */
  snapshot?: string;
  /** rbd: `<config file=...>`. */
  config?: string;
  /** iscsi: `<initiator><iqn name=...>`. */
  initiator?: string;
  /** ssh: `<knownHosts path=...>`. */
  knownHosts?: string;
}

/** A network disk guestlens cannot pass to QEMU (an unknown protocol, a secret, TLS, a missing host or name). */
export class NetworkDiskError extends NbdError {
  constructor(
    readonly image: string,
    message: string,
    code = 'EINVAL',
  ) {
    super(code, `${image}: ${message}`, { data: { image } });
  }
}

const DEFAULT_PORTS: Record<string, string> = { nbd: '10809', iscsi: '3260', gluster: '24007', http: '80', https: '443', ftp: '21', ftps: '990', ssh: '22' };

export function isNetworkProtocol(p: string): p is NetworkProtocol {
  return (NETWORK_PROTOCOLS as readonly string[]).includes(p);
}

/** A URL-like name for messages and output (`nbd://host:10809/export`, `nbd+unix:///export?socket=/run/x.sock`, `rbd:pool/image`). */
export function networkDiskName(disk: NetworkDisk): string {
  const h = disk.hosts[0];
  const name = disk.name ?? '';
  if (h?.transport === 'unix') return `${disk.protocol}+unix:///${name.replace(/^\//, '')}?socket=${h.socket ?? '?'}`;
  const host = h?.name === undefined ? '' : `${h.name.includes(':') ? `[${h.name}]` : h.name}${h.port ? `:${h.port}` : ''}`;
  if (disk.protocol === 'rbd') return `rbd:${name}${host ? ` (${host})` : ''}`;
  return `${disk.protocol}://${host}/${name.replace(/^\//, '')}${disk.query ? `?${disk.query}` : ''}`;
}

type Blockdev = Record<string, unknown>;

/**
 * QEMU's blockdev options (QAPI, as `--blockdev` takes them in JSON) for the
 * protocol node that reads this disk, without node-name and read-only (the
 * caller adds those). Throws NetworkDiskError for what can't be read.
 */
export function networkBlockdev(disk: NetworkDisk, image = networkDiskName(disk)): Blockdev {
  const { protocol } = disk;
  if (!isNetworkProtocol(protocol)) {
    throw new NetworkDiskError(image, `network protocol "${protocol}" is not one QEMU reads here (guestlens passes ${NETWORK_PROTOCOLS.join(', ')} to QEMU)`, 'EOPNOTSUPP');
  }
  if (disk.secret !== undefined) {
    throw new NetworkDiskError(
      image,
      `authenticates with the libvirt secret ${disk.secret}, whose value libvirt gives only to read-write connections; guestlens reads read-only, so read this disk where it is reachable without the secret, or copy it to a file`,
      'EACCES',
    );
  }
  if (disk.tls) {
    throw new NetworkDiskError(image, `uses TLS, whose credentials are libvirt's and QEMU's (in its PKI directory), not guestlens's; read it from a plain export or a copy`, 'EOPNOTSUPP');
  }
  const hosts = disk.hosts;
  const first = hosts[0];
  const port = (h: NetworkHost | undefined) => h?.port ?? DEFAULT_PORTS[protocol];
  const needHost = (): NetworkHost => {
    if (!first || (first.transport !== 'unix' && !first.name)) throw new NetworkDiskError(image, `names no <host> to read the ${protocol} disk from`);
    return first;
  };
  const needName = (what: string): string => {
    if (!disk.name) throw new NetworkDiskError(image, `has no source name (${what})`);
    return disk.name;
  };
  const inet = (h: NetworkHost) => ({ type: 'inet', host: h.name!, port: port(h) });
  const socketAddress = (h: NetworkHost) => {
    if (h.transport === 'unix') {
      if (!h.socket) throw new NetworkDiskError(image, 'names a unix-socket host without a socket path');
      return { type: 'unix', path: h.socket };
    }
    if (h.transport !== undefined && h.transport !== 'tcp') throw new NetworkDiskError(image, `host transport "${h.transport}" is not one guestlens passes to QEMU (tcp, unix)`, 'EOPNOTSUPP');
    return inet(h);
  };

  switch (protocol) {
    case 'nbd': {
      const out: Blockdev = { driver: 'nbd', server: socketAddress(needHost()) };
      if (disk.name) out.export = disk.name;
      return out;
    }
    case 'iscsi': {
      const h = needHost();
      if (h.transport === 'unix') throw new NetworkDiskError(image, 'iSCSI has no unix-socket transport');
      // libvirt's name is TARGET[/LUN]; the LUN defaults to 0.
      const m = /^(.+?)(?:\/(\d+))?$/.exec(needName('the iSCSI target IQN, optionally /LUN'))!;
      const out: Blockdev = { driver: 'iscsi', transport: h.transport === 'rdma' ? 'iser' : 'tcp', portal: `${h.name!.includes(':') ? `[${h.name}]` : h.name}:${port(h)}`, target: m[1], lun: Number(m[2] ?? 0) };
      if (disk.username) out.user = disk.username;
      if (disk.initiator) out['initiator-name'] = disk.initiator;
      return out;
    }
    case 'rbd': {
      const parts = needName('POOL/IMAGE').split('/');
      if (parts.length < 2 || parts.length > 3 || parts.some((p) => !p)) throw new NetworkDiskError(image, `rbd source name "${disk.name}" is not POOL/IMAGE or POOL/NAMESPACE/IMAGE`);
      const out: Blockdev = { driver: 'rbd', pool: parts[0], image: parts[parts.length - 1] };
      if (parts.length === 3) out.namespace = parts[1];
      if (disk.snapshot) out.snapshot = disk.snapshot;
      if (disk.config) out.conf = disk.config;
      if (disk.username) out.user = disk.username;
      // Without hosts, librbd finds the monitors in its configuration.
      if (hosts.length > 0) out.server = hosts.map((h) => ({ host: h.name ?? '', port: h.port ?? '6789' }));
      return out;
    }
    case 'gluster': {
      needHost();
      const m = /^\/?([^/]+)\/(.+)$/.exec(needName('VOLUME/PATH'));
      if (!m) throw new NetworkDiskError(image, `gluster source name "${disk.name}" is not VOLUME/PATH`);
      return { driver: 'gluster', volume: m[1], path: m[2], server: hosts.map(socketAddress) };
    }
    case 'http':
    case 'https':
    case 'ftp':
    case 'ftps': {
      const h = needHost();
      if (h.transport === 'unix') throw new NetworkDiskError(image, `${protocol} over a unix socket is not something QEMU's curl driver reads`);
      needName('the path of the image on the server');
      const out: Blockdev = { driver: protocol, url: networkDiskName({ ...disk, hosts: [{ ...h, port: port(h) }] }) };
      if (disk.username) out.username = disk.username;
      if ((protocol === 'https' || protocol === 'ftps') && disk.sslVerify === false) out.sslverify = false;
      return out;
    }
    case 'ssh': {
      const h = needHost();
      if (h.transport === 'unix') throw new NetworkDiskError(image, 'ssh over a unix socket is not something QEMU reads');
      const out: Blockdev = { driver: 'ssh', server: { host: h.name!, port: port(h) }, path: needName('the path of the image on the server') };
      if (disk.username) out.user = disk.username;
      // QEMU checks the host key against ~/.ssh/known_hosts by default; libvirt may name another file.
      if (disk.knownHosts) throw new NetworkDiskError(image, `names its own known_hosts file ${disk.knownHosts}, which QEMU 7.2's ssh driver cannot be given; add the key to ~/.ssh/known_hosts and remove <knownHosts>`, 'EOPNOTSUPP');
      return out;
    }
    case 'nfs': {
      const h = needHost();
      if (h.transport === 'unix') throw new NetworkDiskError(image, 'NFS over a unix socket is not something QEMU reads');
      return { driver: 'nfs', server: { type: 'inet', host: h.name! }, path: needName('the exported path of the image') };
    }
  }
}
