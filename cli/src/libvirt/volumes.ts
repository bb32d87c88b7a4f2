/**
 * Disks of type 'volume': `<source pool='P' volume='V'/>` names a volume of
 * a libvirt storage pool, not a path, so libvirt is asked what it is,
 * read-only (`virsh -r vol-dumpxml --pool P V`). File and block volumes are
 * read like file and block disks, in their place in the domain's disk order;
 * a network volume (rbd, gluster, iSCSI-direct pools), a directory volume or
 * a volume libvirt cannot find is said by name, and the guest's other disks
 * are still read.
 */
import { XMLParser } from 'fast-xml-parser';
import type { Domain, DomainDisk, UnsupportedDisk } from './domainXml.ts';

/** Runs `virsh -r [-c URI] ARGS...` (the caller's way: execa, or the exporter's spawner). */
export type VirshRunner = (args: string[]) => Promise<{ exitCode: number | undefined; code?: string; message?: string; stdout: string; stderr: string }>;

/** Formats libvirt may record for a volume that QEMU reads as image formats (others, like iso or dir, say nothing of it). */
const IMAGE_FORMATS = new Set(['raw', 'qcow2', 'qcow', 'qed', 'vmdk', 'vdi', 'vpc', 'vhdx', 'parallels', 'bochs', 'cloop', 'dmg']);

type Answer = { path: string; format: string | undefined } | { reason: string };

/** The domain with each volume disk resolved to its file or block device, or moved to `unsupported` saying why. */
export async function resolveVolumes(domain: Domain, virsh: VirshRunner): Promise<Domain> {
  if (!domain.disks.some((d) => d.volume)) return domain;
  const disks: DomainDisk[] = [];
  const unsupported: UnsupportedDisk[] = [...domain.unsupported];
  for (const disk of domain.disks) {
    if (!disk.volume) {
      disks.push(disk);
      continue;
    }
    const answer = await lookUp(disk.volume.pool, disk.volume.name, virsh);
    if ('reason' in answer) {
      unsupported.push({ type: 'volume', target: disk.target, description: `pool ${disk.volume.pool} volume ${disk.volume.name}`, reason: answer.reason });
      continue;
    }
    // libvirt tells QEMU the format from <driver type>; the volume's own record is the fallback.
    disks.push({ path: answer.path, format: disk.format ?? answer.format, device: disk.device, target: disk.target });
  }
  return { ...domain, disks, unsupported };
}

async function lookUp(pool: string, name: string, virsh: VirshRunner): Promise<Answer> {
  const args = ['vol-dumpxml', '--pool', pool, '--', name];
  const r = await virsh(args);
  if (r.code === 'ENOENT') return { reason: 'virsh is not installed (Debian package libvirt-clients) to ask libvirt where the volume is; give the volume\'s file with -a' };
  if (r.exitCode !== 0) return { reason: `libvirt cannot say where it is (virsh ${args.join(' ')}: ${r.stderr.trim().split('\n').pop() || r.message || `exit ${r.exitCode}`})` };
  let volume: Record<string, unknown> | undefined;
  try {
    volume = (new XMLParser({ ignoreAttributes: false, parseAttributeValue: false, parseTagValue: false }).parse(r.stdout, true) as { volume?: Record<string, unknown> }).volume;
  } catch {
    volume = undefined;
  }
  if (!volume || typeof volume !== 'object') return { reason: `virsh ${args.join(' ')} printed no <volume> document` };
  const type = (volume['@_type'] as string | undefined) ?? 'file';
  const target = volume.target as Record<string, unknown> | undefined;
  const path = typeof target?.path === 'string' ? target.path : undefined;
  if (type !== 'file' && type !== 'block') return { reason: `a ${type} volume${path ? ` (${path})` : ''}; guestlens reads file and block volumes (give a network volume as a network disk)` };
  if (!path?.startsWith('/')) return { reason: `libvirt gives no absolute path for it${path ? ` (${path})` : ''}` };
  const format = (target?.format as Record<string, unknown> | undefined)?.['@_type'];
  return { path, format: typeof format === 'string' && IMAGE_FORMATS.has(format) ? format : undefined };
}
