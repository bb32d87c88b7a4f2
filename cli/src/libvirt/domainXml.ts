/**
 * The disks of a libvirt domain, from its XML (`virsh -r dumpxml` or a saved
 * file). File and block disks are read as files; network disks are read
 * through QEMU's driver for their protocol (@guestlens/nbd); volume disks
 * (from a storage pool) name no path here and are resolved by asking libvirt
 * (volumes.ts); other disks are reported by name as unsupported rather than
 * dropped or crashed on.
 */
import { XMLParser } from 'fast-xml-parser';
import { GuestlensError } from '@guestlens/block';
import { networkBlockdev, networkDiskName, NetworkDiskError, type NetworkDisk } from '@guestlens/nbd';

export interface DomainDisk {
  /** Path of the file or block device; for a network disk, its URL-like name. */
  path: string;
  /** What libvirt says of a network disk's source. */
  network?: NetworkDisk;
  /** Format from <driver type=...>, when libvirt states it. */
  format: string | undefined;
  /** 'disk', 'cdrom', 'floppy', 'lun'. */
  device: string;
  /** Guest-side target name (vda, sdb...), for messages. */
  target: string | undefined;
  /** A disk from a storage pool (`<disk type='volume'>`): `path` says pool/volume until volumes.ts resolves it. */
  volume?: { pool: string; name: string };
}

export interface UnsupportedDisk {
  /** libvirt's disk type: 'network', 'volume', 'nvme', ... */
  type: string;
  target: string | undefined;
  /** What the source names (protocol + name, pool/volume), for the message. */
  description: string;
  /** Why it can't be read, when not just its type (a network disk needing a libvirt secret, TLS, or naming no host). */
  reason?: string;
}

export interface Domain {
  name: string;
  uuid: string | undefined;
  disks: DomainDisk[];
  unsupported: UnsupportedDisk[];
}

export class DomainXmlError extends GuestlensError {
  constructor(message: string) {
    super('EDOMAINXML', message);
  }
}

type Node = Record<string, unknown>;

const asArray = (v: unknown): Node[] => (v === undefined ? [] : Array.isArray(v) ? (v as Node[]) : [v as Node]);
const attr = (n: Node | undefined, name: string): string | undefined => {
  const v = n?.[`@_${name}`];
  return v === undefined ? undefined : String(v);
};
const text = (v: unknown): string | undefined => {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object') {
    const t = (v as Node)['#text'];
    return t === undefined ? undefined : String(t);
  }
  return String(v);
};

/** Parse a libvirt domain XML document; `origin` names it in errors. */
export function parseDomainXml(xml: string, origin: string): Domain {
  let doc: Node;
  try {
    doc = new XMLParser({ ignoreAttributes: false, parseAttributeValue: false, parseTagValue: false, processEntities: true }).parse(xml, true) as Node;
  } catch (err) {
    throw new DomainXmlError(`${origin}: not valid XML: ${err instanceof Error ? err.message : String(err)}`);
  }
  const domain = doc.domain as Node | undefined;
  if (!domain || typeof domain !== 'object') throw new DomainXmlError(`${origin}: not a libvirt domain XML (no <domain> element)`);
  const name = text(domain.name);
  if (!name) throw new DomainXmlError(`${origin}: the domain has no <name>`);
  const disks: DomainDisk[] = [];
  const unsupported: UnsupportedDisk[] = [];
  for (const devices of asArray(domain.devices)) {
    for (const disk of asArray(devices.disk)) {
      const type = attr(disk, 'type') ?? 'file';
      const device = attr(disk, 'device') ?? 'disk';
      const target = attr(asArray(disk.target)[0], 'dev');
      const source = asArray(disk.source)[0];
      const format = attr(asArray(disk.driver)[0], 'type');
      if (type === 'file' || type === 'block') {
        const path = attr(source, type === 'file' ? 'file' : 'dev');
        // An empty CD-ROM drive has no source: nothing to read, as libguestfs skips it.
        if (!path) continue;
        disks.push({ path, format, device, target });
      } else if (type === 'network' && source) {
        const network = networkSource(source);
        const path = networkDiskName(network);
        // What can't be passed to QEMU (a secret, TLS, no host) is said now, so the guest's other disks are still read.
        try {
          networkBlockdev(network, path);
        } catch (err) {
          if (!(err instanceof NetworkDiskError)) throw err;
          unsupported.push({ type, target, description: `${network.protocol} ${path}`, reason: err.message.slice(path.length + 2) });
          continue;
        }
        disks.push({ path, network, format, device, target });
      } else if (type === 'volume' && attr(source, 'pool') && attr(source, 'volume')) {
        const pool = attr(source, 'pool')!;
        const name = attr(source, 'volume')!;
        disks.push({ path: `pool ${pool} volume ${name}`, volume: { pool, name }, format, device, target });
      } else {
        const description =
          type === 'network'
            ? `${attr(source, 'protocol') ?? '?'}:${attr(source, 'name') ?? '?'}`
            : type === 'volume'
              ? `pool ${attr(source, 'pool') ?? '?'} volume ${attr(source, 'volume') ?? '?'}`
              : type;
        unsupported.push({ type, target, description });
      }
    }
  }
  return { name, uuid: text(domain.uuid), disks, unsupported };
}

/** libvirt's `<source>` of a network disk, as the nbd package takes it. */
function networkSource(source: Node): NetworkDisk {
  const auth = asArray(source.auth)[0] ?? undefined;
  const secret = asArray(auth?.secret)[0];
  const out: NetworkDisk = {
    protocol: attr(source, 'protocol') ?? '?',
    hosts: asArray(source.host).map((h) => ({ name: attr(h, 'name'), port: attr(h, 'port'), transport: attr(h, 'transport'), socket: attr(h, 'socket') })),
  };
  const set = <K extends keyof NetworkDisk>(key: K, value: NetworkDisk[K] | undefined) => {
    if (value !== undefined) out[key] = value;
  };
  set('name', attr(source, 'name'));
  set('tls', attr(source, 'tls') === 'yes' ? true : undefined);
  set('query', attr(source, 'query'));
  set('username', attr(auth, 'username'));
  set('secret', secret ? `${attr(secret, 'type') ?? ''} ${attr(secret, 'usage') ?? attr(secret, 'uuid') ?? '?'}`.trim() : undefined);
  set('sslVerify', attr(asArray(source.ssl)[0], 'verify') === 'no' ? false : undefined);
  set('snapshot', attr(asArray(source.snapshot)[0], 'name'));
  set('config', attr(asArray(source.config)[0], 'file'));
  set('initiator', attr(asArray(asArray(source.initiator)[0]?.iqn)[0], 'name'));
  set('knownHosts', attr(asArray(source.knownHosts)[0], 'path'));
  return out;
}
