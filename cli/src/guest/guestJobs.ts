/**
 * How every guest command names its guests, as the virt tools do: IMAGE
 * (one guest each), -a DISK (several disks of one guest), -d DOMAIN through
 * virsh, --domain-xml FILE; --format, --backing for what the images may
 * name, and -m DEV[:MOUNTPOINT] to mount by hand.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Argv } from 'yargs';
import type { ImageSpec } from '@guestlens/inspect';
import { BACKING_POLICIES, isBackingPolicy, type BackingPolicyName } from '@guestlens/qcow2-js/policy';
import { UsageError } from '../errors.ts';
import type { Domain } from '../libvirt/domainXml.ts';

export interface GuestArgs {
  add: string[];
  format?: string;
  domain: string[];
  connect?: string;
  'domain-xml': string[];
  uuid?: boolean;
  backing?: string;
  reader?: string;
  'key-file'?: string;
}

/** One guest to read. */
export interface GuestJob {
  /** How output names it: the image's base name, "first+" for several disks, the domain's name. */
  name: string;
  images: ImageSpec[];
  /** Disks known to be unreadable (libvirt volume disks, ...), said as problems. */
  unreadable: string[];
}

/** The options every guest command takes. */
export function guestOptions<T>(y: Argv<T>, { mount = true }: { mount?: boolean } = {}) {
  let out = y
    .option('add', { alias: 'a', type: 'string', array: true, nargs: 1, default: [], describe: 'a disk of the guest (repeat for each disk, in guest order)' })
    .option('format', { type: 'string', describe: 'format of every image (raw, qcow2, ...); detected by magic when absent — give raw for untrusted raw images' })
    .option('domain', { alias: 'd', type: 'string', array: true, nargs: 1, default: [], describe: 'a libvirt domain (read with virsh -r dumpxml)' })
    .option('connect', { alias: 'c', type: 'string', describe: 'libvirt URI for -d' })
    .option('domain-xml', { type: 'string', array: true, nargs: 1, default: [], describe: 'a saved libvirt domain XML file' })
    .option('backing', { type: 'string', describe: 'which files an image may name (backing files, data files): allow (default), same-dir (only inside its directory), none' })
    .option('reader', { type: 'string', choices: ['native', 'qemu'], describe: 'who reads the image format: by default guestlens where it has a reader (raw, qcow2, vmdk, vhdx, vpc, vdi) and QEMU, through qemu-storage-daemon and NBD, for the rest (qed, parallels, dmg, cloop, LUKS, ...); native refuses those, qemu forces QEMU (to compare)' })
    .option('key-file', { type: 'string', describe: 'a file whose first line is the passphrase of LUKS-encrypted images (read by QEMU)' });
  if (mount) out = out.option('mount', { alias: 'm', type: 'string', array: true, nargs: 1, default: [], describe: 'mount DEV[:MOUNTPOINT] by hand instead of inspecting (repeatable; MOUNTPOINT defaults to /)' }) as typeof out;
  return out;
}

export function backingPolicy(command: string, value: string | undefined): BackingPolicyName | undefined {
  if (value === undefined) return undefined;
  if (!isBackingPolicy(value)) throw new UsageError(`${command}: --backing ${value}: use one of ${BACKING_POLICIES.join(', ')}`);
  return value;
}

/** virt-df's guest name for several disks of one guest: the first name plus one "+" per extra disk. */
export function guestDisplayName(firstName: string, diskCount: number): string {
  return firstName + '+'.repeat(Math.max(0, diskCount - 1));
}

/** Every guest the arguments name (df: each positional image is a guest of its own). */
export async function guestJobs(args: GuestArgs, images: string[]): Promise<GuestJob[]> {
  const secret = args['key-file'] === undefined ? undefined : await readKeyFile(args['key-file']);
  if (secret !== undefined && args.reader === 'native') throw new UsageError('--key-file: encrypted images are read by QEMU; leave out --reader native');
  const reader: Pick<ImageSpec, 'reader'> = args.reader === 'qemu' || args.reader === 'native' ? { reader: args.reader } : {};
  const extra = { ...reader, ...(secret === undefined ? {} : { secret }) };
  const spec = (path: string, format = args.format): ImageSpec => ({ path, format, ...extra });
  const jobs: GuestJob[] = [];
  if (args.add.length > 0) jobs.push({ name: guestDisplayName(basename(args.add[0]), args.add.length), images: args.add.map((p) => spec(p)), unreadable: [] });
  for (const image of images) jobs.push({ name: basename(image), images: [spec(image)], unreadable: [] });
  if (args['domain-xml'].length > 0) {
    const { parseDomainXml } = await import('../libvirt/domainXml.ts');
    const { resolveVolumes } = await import('../libvirt/volumes.ts');
    const { virshRunner } = await import('../libvirt/virsh.ts');
    // A saved XML's volume disks are still looked up in libvirt (-c URI, or virsh's default), when virsh is there.
    for (const file of args['domain-xml']) jobs.push(withReader(domainJob(await resolveVolumes(parseDomainXml(await readFile(file, 'utf8'), file), virshRunner(args.connect)), args), extra));
  }
  if (args.domain.length > 0) {
    const { dumpDomain, virshRunner } = await import('../libvirt/virsh.ts');
    const { resolveVolumes } = await import('../libvirt/volumes.ts');
    for (const name of args.domain) jobs.push(withReader(domainJob(await resolveVolumes(await dumpDomain(name, args.connect), virshRunner(args.connect)), args), extra));
  }
  return jobs;
}

function withReader(job: GuestJob, extra: Partial<ImageSpec>): GuestJob {
  return { ...job, images: job.images.map((i) => ({ ...i, ...extra })) };
}

/** --key-file: the passphrase is the file's first line (a trailing newline is not part of it). */
export async function readKeyFile(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--key-file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  return text.split('\n')[0];
}

/** A libvirt domain's disks as one guest (named by its name, or UUID with --uuid). */
export function domainJob(domain: Domain, args: Pick<GuestArgs, 'uuid' | 'format'>): GuestJob {
  return {
    name: args.uuid && domain.uuid ? domain.uuid : domain.name,
    // --format overrides what libvirt says only when given.
    // A volume disk left unresolved (resolveVolumes not asked) has no path to open.
    images: domain.disks.filter((d) => !d.volume).map((d) => ({ path: d.path, format: args.format ?? d.format, ...(d.network ? { network: d.network } : {}) })),
    unreadable: [
      ...domain.unsupported.map((u) => `disk ${u.target ?? '?'} (${u.type === 'network' ? u.description : `${u.type} ${u.description}`}): ${u.reason ?? `${u.type} disks are not supported; file, block, network and storage-pool volume disks are read`}`),
      ...domain.disks.filter((d) => d.volume).map((d) => `disk ${d.target ?? '?'} (volume ${d.path}): libvirt was not asked where the volume is`),
    ],
  };
}

/**
 * The one guest of a command that reads files (ls, cat, copy-out, ...): with
 * -a/-d/--domain-xml, every positional is an operand; otherwise the first
 * positional is the image and the rest are operands.
 */
export async function oneGuest(command: string, args: GuestArgs, positionals: string[]): Promise<{ job: GuestJob; operands: string[] }> {
  const named = args.add.length > 0 || args.domain.length > 0 || args['domain-xml'].length > 0;
  const images = named ? [] : positionals.slice(0, 1);
  const operands = named ? positionals : positionals.slice(1);
  const jobs = await guestJobs(args, images);
  if (jobs.length === 0) throw new UsageError(`${command}: name the guest: IMAGE, -a DISK (once per disk), -d DOMAIN or --domain-xml FILE`);
  if (jobs.length > 1) throw new UsageError(`${command}: name one guest (several -a disks are one guest; give -d or --domain-xml once)`);
  if (jobs[0].images.length === 0) throw new UsageError(`${command}: the domain has no disk guestlens can read`);
  return { job: jobs[0], operands };
}

/** -m DEV[:MOUNTPOINT]: the device and where it goes (default "/"). Devices may contain ':' (btrfsvol:/dev/sda2/root). */
export function parseMountOption(value: string): { device: string; mountpoint: string } {
  const m = /^(btrfsvol:[^:]+|[^:]+)(?::(\/.*))?$/.exec(value);
  if (!m) throw new UsageError(`-m ${value}: give DEVICE or DEVICE:MOUNTPOINT (for example -m /dev/sda1 or -m /dev/VG/var:/var)`);
  return { device: m[1].replace(/^\/dev\/(?:[hv]d|xvd)/, '/dev/sd'), mountpoint: m[2] ?? '/' };
}
