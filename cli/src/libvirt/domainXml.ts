/**
 * The disks of a libvirt domain, from its XML (`virsh -r dumpxml` or a saved
 * file). File and block disks are readable; network and volume disks are
 * reported by name as unsupported rather than dropped or crashed on.
 */
import { XMLParser } from 'fast-xml-parser';
import { GuestlensError } from '@guestlens/block';

export interface DomainDisk {
  /** Path of the file or block device. */
  path: string;
  /** Format from <driver type=...>, when libvirt states it. */
  format: string | undefined;
  /** 'disk', 'cdrom', 'floppy', 'lun'. */
  device: string;
  /** Guest-side target name (vda, sdb...), for messages. */
  target: string | undefined;
}

export interface UnsupportedDisk {
  /** libvirt's disk type: 'network', 'volume', 'nvme', ... */
  type: string;
  target: string | undefined;
  /** What the source names (protocol + name, pool/volume), for the message. */
  description: string;
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
