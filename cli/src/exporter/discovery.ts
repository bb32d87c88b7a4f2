/**
 * Which guests the exporter watches, found again every refresh: images by
 * glob (a new image appears, a deleted one disappears) and libvirt domains
 * through `virsh -r` (running and defined ones; a domain is followed by its
 * UUID, so a renamed domain keeps its history of errors and its open guest).
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import picomatch from 'picomatch';
import { execa } from 'execa';
import { glob } from 'tinyglobby';
import { domainJob, type GuestJob } from '../guest/guestJobs.ts';

export interface DiscoveryOptions {
  images: string[];
  /** Watch libvirt's domains; the URI (undefined: virsh's default). */
  libvirt?: { uri: string | undefined };
  format?: string;
  /** How to run virsh (the exporter's spawner); default: from this process. */
  run?: import('@guestlens/overlay').CommandRunner;
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
    const found = GLOB_CHARS.test(pattern) ? await expand(pattern) : [resolve(pattern)];
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
    const { resolveVolumes } = await import('../libvirt/volumes.ts');
    const uri = o.libvirt.uri ? ['-c', o.libvirt.uri] : [];
    const run = o.run ?? (async (file: string, args: string[]) => {
      const r = await execa(file, args, { reject: false, stdin: 'ignore' });
      return { exitCode: r.exitCode, code: r.code, message: r.shortMessage, stdout: String(r.stdout), stderr: String(r.stderr) };
    });
    const list = await run('virsh', ['-r', ...uri, 'list', '--all', '--name'], {});
    if (list.exitCode !== 0) problems.push(`virsh list failed: ${list.stderr.trim() || (list.code === 'ENOENT' ? 'virsh is not installed (Debian package libvirt-clients)' : list.message)}`);
    else {
      for (const domain of String(list.stdout).split('\n').map((l) => l.trim()).filter(Boolean)) {
        const xml = await run('virsh', ['-r', ...uri, 'dumpxml', '--', domain], {});
        if (xml.exitCode !== 0) {
          problems.push(`virsh dumpxml ${domain} failed: ${String(xml.stderr).trim()}`);
          continue;
        }
        try {
          const d = await resolveVolumes(parseDomainXml(String(xml.stdout), `domain ${domain}`), (args) => run('virsh', ['-r', ...uri, ...args], {}));
          jobs.set(`domain:${d.uuid ?? d.name}`, domainJob(d, { uuid: false, format: o.format }));
        } catch (err) {
          problems.push(`domain ${domain}: ${(err as Error).message}`);
        }
      }
    }
  }
  return { jobs, problems };
}

const GLOB_CHARS = /[*?[\]{}]/;

/**
 * The paths a glob names, every kind but directories: the glob library
 * lists regular files only, and block devices (`/dev/vg/*`) are images
 * too, while a FIFO or socket a glob finds must be reported, not skipped in
 * silence. So the library finds the directories and we list their entries.
 */
async function expand(pattern: string): Promise<string[]> {
  const abs = resolve(pattern);
  const parent = dirname(abs);
  const dirs = GLOB_CHARS.test(parent) ? (await glob(parent, { absolute: true, onlyDirectories: true, followSymbolicLinks: true })).map((d) => d.replace(/(.)\/$/, '$1')) : [parent];
  if (parent.endsWith('/**')) dirs.push(parent.slice(0, -3) || '/');
  const match = picomatch(abs);
  const out: string[] = [];
  for (const dir of new Set(dirs)) {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory() || !match(path)) continue;
      if (e.isSymbolicLink() && (await stat(path).then((st) => st.isDirectory(), () => false))) continue;
      out.push(path);
    }
  }
  return out;
}
