/**
 * Which guests the exporter watches, found again every refresh: images by
 * glob (a new image appears, a deleted one disappears) and libvirt domains
 * through `virsh -r` (running and defined ones; a domain is followed by its
 * UUID, so a renamed domain keeps its history of errors and its open guest).
 */
import { basename, resolve } from 'node:path';
import { execa } from 'execa';
import { glob } from 'tinyglobby';
import { domainJob, type GuestJob } from '../guest/guestJobs.ts';

export interface DiscoveryOptions {
  images: string[];
  /** Watch libvirt's domains; the URI (undefined: virsh's default). */
  libvirt?: { uri: string | undefined };
  format?: string;
}

export interface Discovered {
  /** Stable key → the guest. */
  jobs: Map<string, GuestJob>;
  /** What could not be listed (virsh failing), for the log. */
  problems: string[];
}

export async function discover(o: DiscoveryOptions): Promise<Discovered> {
  const jobs = new Map<string, GuestJob>();
  const problems: string[] = [];
  const names = new Map<string, number>();
  const paths: string[] = [];
  for (const pattern of o.images) {
    // A plain path is taken as it is (a block device, a name with glob characters in it).
    const found = /[*?[\]{}]/.test(pattern) ? await glob(pattern, { absolute: true, onlyFiles: true, followSymbolicLinks: true }) : [resolve(pattern)];
    paths.push(...found);
  }
  for (const p of [...new Set(paths)].sort()) names.set(basename(p), (names.get(basename(p)) ?? 0) + 1);
  for (const p of [...new Set(paths)].sort()) {
    // Two images with one base name (two directories of VMs): the full path tells them apart.
    const name = names.get(basename(p))! > 1 ? p : basename(p);
    jobs.set(`image:${p}`, { name, images: [{ path: p, format: o.format }], unreadable: [] });
  }
  if (o.libvirt) {
    const { parseDomainXml } = await import('../libvirt/domainXml.ts');
    const uri = o.libvirt.uri ? ['-c', o.libvirt.uri] : [];
    const list = await execa('virsh', ['-r', ...uri, 'list', '--all', '--name'], { reject: false });
    if (list.exitCode !== 0) problems.push(`virsh list failed: ${String(list.stderr).trim() || list.message}`);
    else {
      for (const domain of String(list.stdout).split('\n').map((l) => l.trim()).filter(Boolean)) {
        const xml = await execa('virsh', ['-r', ...uri, 'dumpxml', '--', domain], { reject: false });
        if (xml.exitCode !== 0) {
          problems.push(`virsh dumpxml ${domain} failed: ${String(xml.stderr).trim()}`);
          continue;
        }
        try {
          const d = parseDomainXml(String(xml.stdout), `domain ${domain}`);
          jobs.set(`domain:${d.uuid ?? d.name}`, domainJob(d, { uuid: false, format: o.format }));
        } catch (err) {
          problems.push(`domain ${domain}: ${(err as Error).message}`);
        }
      }
    }
  }
  return { jobs, problems };
}
