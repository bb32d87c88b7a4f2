/**
 * guestlens df: virt-df's job. Each positional IMAGE is a guest; several -a
 * are the disks of one guest; -d/--domain-xml read a libvirt domain's disks.
 * Numbers are what the guest kernel's statfs would return.
 */
import type { Argv, CommandModule } from 'yargs';
// Packages are imported when the command runs, not when the CLI starts (see cli/build.mjs).
import type { DfRow } from '@guestlens/inspect';
import type { BackingPolicyName as BackingPolicy } from '@guestlens/qcow2-js/policy';
import { backingPolicy, guestJobs, guestOptions, type GuestJob } from '../guest/guestJobs.ts';
import { EXIT_ERROR, EXIT_PARTIAL, UsageError, describeError } from '../errors.ts';
import { dfHeader, dfRow, type DfOutputOptions } from '../df/dfOutput.ts';
import { forEachOrdered } from '../parallel.ts';

interface DfArgs {
  images: string[];
  add: string[];
  format?: string;
  'human-readable': boolean;
  inodes: boolean;
  csv: boolean;
  json: boolean;
  prometheus: boolean;
  parallel: number;
  domain: string[];
  connect?: string;
  'domain-xml': string[];
  uuid: boolean;
  backing?: string;
}

interface GuestResult {
  name: string;
  rows: DfRow[];
  problems: string[];
  /** The guest could not be opened at all. */
  failed: boolean;
  /** device → where the guest mounts it (with --json). */
  mountpoints?: Map<string, string>;
}

export const dfCommand: CommandModule<object, DfArgs> = {
  command: 'df [images..]',
  describe: 'Free space of every filesystem in guest disk images (like virt-df)',
  builder: (y: Argv) =>
    guestOptions(y, { mount: false })
      .usage(
        'guestlens df [IMAGE...] [-a IMAGE]... [-d DOMAIN] [--domain-xml FILE] [options]\n\n' +
          'Each IMAGE is a guest of its own; several -a are the disks of one guest. ' +
          'Images are read through a throw-away overlay, so this works while a VM runs, and never changes them.\n' +
          'Give --format raw for untrusted raw images: guestlens never guesses a raw image into another format.',
      )
      .positional('images', { type: 'string', array: true, default: [], describe: 'disk images, one guest each' })
      .option('human-readable', { alias: 'h', type: 'boolean', default: false, describe: 'sizes in powers of 1024 (1.2G, 235M)' })
      .option('inodes', { alias: 'i', type: 'boolean', default: false, describe: 'inode counts instead of blocks' })
      .option('csv', { type: 'boolean', default: false, describe: 'comma-separated values, as virt-df --csv' })
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object per filesystem' })
      .option('prometheus', { type: 'boolean', default: false, describe: 'Prometheus metrics, as the exporter serves them (for node_exporter\'s textfile collector)' })
      .option('parallel', { alias: 'P', type: 'number', default: 1, describe: 'read up to N guests at a time (output stays in argument order)' })
      .option('uuid', { type: 'boolean', default: false, describe: 'name libvirt guests by UUID instead of name' })
      .epilog(
        'Exit status: 0 when every filesystem was read; 3 when something could not be (a filesystem guestlens cannot read, damage, ' +
          'or a guest in which no filesystem was found at all), each said on stderr; 1 when no guest could be read; 2 for a usage error.',
      ),
  handler: async (args) => {
    if (args.csv && args.json) throw new UsageError('df: choose one of --csv and --json');
    if (args.csv && args['human-readable']) throw new UsageError('df: -h and --csv cannot be used together (CSV numbers are always plain)');
    if (!Number.isInteger(args.parallel) || args.parallel < 1) throw new UsageError(`df: -P wants a whole number of guests, at least 1 (got ${args.parallel})`);
    const backing = backingPolicy('df', args.backing);
    const jobs = await guestJobs(args, args.images);
    if (jobs.length === 0) {
      throw new UsageError('df: name at least one image (guestlens df IMAGE...), -a IMAGE, -d DOMAIN or --domain-xml FILE');
    }
    if (args.prometheus) {
      if (args.csv || args.json || args['human-readable'] || args.inodes) throw new UsageError('df: --prometheus prints every figure in bytes and inodes; leave out --csv, --json, -h and -i');
      return prometheusDf(jobs, backing, args.parallel);
    }
    const out: DfOutputOptions = { human: args['human-readable'], inodes: args.inodes, csv: args.csv };
    if (!args.json) process.stdout.write(dfHeader(out));
    const json: object[] = [];
    let failedGuests = 0;
    let problems = 0;
    await overSpawner(jobs.length, args.parallel, () => forEachOrdered(jobs, args.parallel, (job) => readGuest(job, backing, args.json), (result) => {
      if (result.failed) failedGuests++;
      problems += result.problems.length;
      for (const p of result.problems) process.stderr.write(`guestlens: df: ${result.name}: ${p}\n`);
      for (const row of result.rows) {
        // A warning that is also why the figures are inexact (NTFS: Windows hibernated...) is said once, below.
        for (const w of row.warnings) if (row.statfs.exact || !(row.statfs.reason ?? '').includes(w)) process.stderr.write(`guestlens: df: ${result.name}:${row.device}: ${w}\n`);
        if (!row.statfs.exact) process.stderr.write(`guestlens: df: ${result.name}:${row.device}: figures may differ from the guest's: ${row.statfs.reason ?? 'inexact'}\n`);
        if (args.json) json.push(jsonRow(result.name, row, result.mountpoints?.get(row.device)));
        else process.stdout.write(dfRow(result.name, row.device, row.statfs, out));
      }
    }));
    if (args.json) process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    if (failedGuests === jobs.length) process.exitCode = EXIT_ERROR;
    else if (problems > 0) process.exitCode = EXIT_PARTIAL;
  },
};

/** Open the guest, read every filesystem (again after a refresh while the guest is live and reads were torn), close it. */
async function readGuest(job: GuestJob, backing: BackingPolicy | undefined, withMountpoints: boolean): Promise<GuestResult> {
  const { openGuest, readGuestDf, inspectGuest } = await import('@guestlens/inspect');
  const result: GuestResult = { name: job.name, rows: [], problems: [...job.unreadable], failed: false };
  if (job.images.length === 0) {
    result.problems.push('the domain has no disk guestlens can read');
    result.failed = true;
    return result;
  }
  let guest;
  try {
    guest = await openGuest(job.images, { backing });
  } catch (err) {
    result.problems.push(err instanceof Error ? describeError(err) : String(err));
    result.failed = true;
    return result;
  }
  try {
    const df = await readGuestDf(guest);
    result.rows = df.rows;
    if (withMountpoints) {
      // Where the guest mounts each filesystem (its first operating system's fstab): JSON only, text and CSV stay virt-df's.
      const os = (await inspectGuest(guest, { applications: false }).catch(() => undefined))?.operatingSystems[0];
      result.mountpoints = new Map(os?.mountpoints.map((m) => [m.device, m.mountpoint]) ?? []);
    }
    for (const p of df.problems) result.problems.push(`${p.device}: ${p.message}`);
  } catch (err) {
    result.problems.push(err instanceof Error ? describeError(err) : String(err));
    result.failed = true;
  } finally {
    await guest.close().catch((err: unknown) => result.problems.push(`closing: ${err instanceof Error ? err.message : String(err)}`));
  }
  return result;
}

/**
 * Guests read several at a time start their qemu-img from a helper process
 * (see spawner.ts): a spawn from here holds the event loop while the others
 * wait. One guest at a time has nothing to overlap, and a helper costs a
 * Node start-up.
 */
async function overSpawner<T>(guests: number, parallel: number, fn: () => Promise<T>): Promise<T> {
  if (guests < 2 || parallel < 2) return fn();
  const { withSpawner } = await import('../spawner.ts');
  return withSpawner(fn);
}

/** The exporter's metrics of these guests, once: what a cron job or systemd timer writes for node_exporter's textfile collector. */
async function prometheusDf(jobs: GuestJob[], backing: BackingPolicy | undefined, parallel: number): Promise<void> {
  const { WatchedGuest } = await import('../exporter/watchedGuest.ts');
  const { renderMetrics } = await import('../exporter/metrics.ts');
  const { VERSION } = await import('../version.ts');
  const samples: { facts: import('../exporter/watchedGuest.ts').GuestFacts; errors: Map<import('../exporter/watchedGuest.ts').ErrorReason, number> }[] = [];
  await overSpawner(jobs.length, parallel, () => forEachOrdered(jobs, parallel, async (job) => {
    const w = new WatchedGuest(job, backing);
    try {
      // No timeout of our own: a cron job or timer has its own.
      await w.refresh(24 * 3600 * 1000);
    } finally {
      await w.close();
    }
    return w;
  }, (w) => {
    samples.push({ facts: w.facts, errors: w.errors });
    if (!w.facts.up) process.stderr.write(`guestlens: df: ${w.job.name}: ${w.facts.error ?? 'could not be read'}\n`);
    for (const e of w.facts.deviceErrors) process.stderr.write(`guestlens: df: ${w.job.name}: ${e.device}: ${e.error}\n`);
  }));
  process.stdout.write(await renderMetrics(samples, { version: VERSION }));
  const down = samples.filter((s) => !s.facts.up).length;
  if (down === samples.length) process.exitCode = EXIT_ERROR;
  else if (down > 0 || samples.some((s) => s.facts.deviceErrors.length > 0)) process.exitCode = EXIT_PARTIAL;
}

function jsonRow(guest: string, row: DfRow, mountpoint: string | undefined): object {
  const s = row.statfs;
  return {
    guest,
    device: row.device,
    fstype: row.fstype,
    label: row.label ?? null,
    uuid: row.uuid ?? null,
    mountpoint: mountpoint ?? null,
    bsize: s.bsize,
    blocks: s.blocks,
    bfree: s.bfree,
    bavail: s.bavail,
    files: s.files,
    ffree: s.ffree,
    exact: s.exact,
    ...(s.exact ? {} : { reason: s.reason ?? 'inexact' }),
  };
}
