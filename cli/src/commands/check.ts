/**
 * guestlens check: a monitoring plugin (Nagios, Icinga, Naemon, Sensu) for a
 * guest's filesystems, as the Monitoring Plugins guidelines define one:
 * exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the guest could not be read,
 * or the arguments are wrong: plugins say UNKNOWN for that, not 2), one
 * status line, then perfdata 'label'=value[UOM];warn;crit;min;max.
 *
 * Thresholds: a percentage is of space (or inodes) used — warn at 80% used;
 * a size (10G, 500M, bytes without a suffix; a count with --inodes) is free
 * space left — warn when less than 10G is free, as check_disk reads units.
 */
import type { Argv, CommandModule } from 'yargs';
import { guestJobs, guestOptions, backingPolicy, type GuestArgs } from '../guest/guestJobs.ts';
import type { FilesystemFacts } from '../exporter/watchedGuest.ts';

interface CheckArgs extends GuestArgs {
  images: string[];
  warning: string;
  critical: string;
  inodes: boolean;
  mountpoint: string[];
  timeout: number;
}

const OK = 0;
const WARNING = 1;
const CRITICAL = 2;
const UNKNOWN = 3;
const STATUS = ['OK', 'WARNING', 'CRITICAL', 'UNKNOWN'];

type Threshold = { kind: 'used-percent'; value: number } | { kind: 'free-at-least'; value: number };

class PluginUsage extends Error {}

export function parseThreshold(option: string, text: string, inodes: boolean): Threshold {
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(text.trim());
  if (pct) {
    const v = Number(pct[1]);
    if (v > 100) throw new PluginUsage(`${option} ${text}: a percentage is at most 100%`);
    return { kind: 'used-percent', value: v };
  }
  const size = /^(\d+(?:\.\d+)?)([KMGTP]i?B?|B)?$/i.exec(text.trim());
  if (!size || (inodes && size[2])) throw new PluginUsage(`${option} ${text}: give a percentage used (80%) or ${inodes ? 'a number of free inodes' : 'a free size (10G, 500M, bytes)'}`);
  const unit = (size[2] ?? '').toUpperCase().replace(/I?B$/, '');
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5 }[unit] ?? 1;
  return { kind: 'free-at-least', value: Number(size[1]) * mult };
}

export const checkCommand: CommandModule<object, CheckArgs> = {
  command: 'check [images..]',
  describe: 'A monitoring plugin (Nagios/Icinga): OK, WARNING or CRITICAL by how full the guest\'s filesystems are',
  builder: (y: Argv) =>
    guestOptions(y, { mount: false })
      .usage('guestlens check IMAGE|-d DOMAIN [--warning 80%] [--critical 90%] [--inodes] [--mountpoint PATH]...')
      .positional('images', { type: 'string', array: true, default: [] })
      .option('warning', { alias: 'w', type: 'string', default: '80%', describe: 'WARNING at this much used (80%) or this little free (10G)' })
      // No -c: it is --connect (libvirt's URI), as in the virt tools.
      .option('critical', { type: 'string', default: '90%', describe: 'CRITICAL at this much used (90%) or this little free (1G)' })
      .option('inodes', { type: 'boolean', default: false, describe: 'check inodes instead of space' })
      .option('mountpoint', { alias: 'p', type: 'string', array: true, nargs: 1, default: [], describe: 'only these mount points (or devices); repeatable' })
      .option('timeout', { alias: 't', type: 'number', default: 30, describe: 'seconds before giving up (UNKNOWN)' }) as unknown as Argv<CheckArgs>,
  handler: async (args) => {
    const say = (code: number, text: string, perf = '') => {
      process.stdout.write(`GUESTLENS ${STATUS[code]} - ${text.replace(/\|/g, '/')}${perf ? ` | ${perf}` : ''}\n`);
      process.exitCode = code;
    };
    let warn: Threshold;
    let crit: Threshold;
    let job;
    try {
      warn = parseThreshold('--warning', args.warning, args.inodes);
      crit = parseThreshold('--critical', args.critical, args.inodes);
      if (warn.kind !== crit.kind) throw new PluginUsage('--warning and --critical: give both as percentages or both as sizes');
      const jobs = await guestJobs(args, args.images);
      if (jobs.length !== 1) throw new PluginUsage('name one guest: IMAGE, -a DISK (per disk), -d DOMAIN or --domain-xml FILE');
      job = jobs[0];
    } catch (err) {
      return say(UNKNOWN, (err as Error).message);
    }
    const { WatchedGuest } = await import('../exporter/watchedGuest.ts');
    const w = new WatchedGuest(job, backingPolicy('check', args.backing));
    try {
      await w.refresh(args.timeout * 1000);
    } finally {
      await w.close();
    }
    const f = w.facts;
    if (!f.up) return say(UNKNOWN, `${job.name}: ${f.error ?? 'could not be read'}`);
    let filesystems = f.filesystems;
    if (args.mountpoint.length) {
      const missing = args.mountpoint.filter((p) => !filesystems.some((fs) => fs.mountpoint === p || fs.device === p));
      if (missing.length) return say(UNKNOWN, `${job.name}: no filesystem mounted at ${missing.join(', ')} (it has ${filesystems.map(labelOf).join(', ') || 'none'})`);
      filesystems = filesystems.filter((fs) => args.mountpoint.includes(fs.mountpoint) || args.mountpoint.includes(fs.device));
    }
    if (filesystems.length === 0) return say(UNKNOWN, `${job.name}: no filesystem guestlens can read`);
    let worst = OK;
    const parts: string[] = [];
    const perf: string[] = [];
    for (const fs of filesystems) {
      const total = args.inodes ? fs.files : fs.sizeBytes;
      // Used as df counts it: what non-root users cannot have any more.
      const free = args.inodes ? fs.filesFree : fs.availBytes;
      const used = args.inodes ? fs.files - fs.filesFree : fs.sizeBytes - fs.freeBytes;
      const usedPct = used + free > 0 ? (100 * used) / (used + free) : 0;
      const state = (t: Threshold) => (t.kind === 'used-percent' ? usedPct >= t.value : free < t.value);
      const level = state(crit) ? CRITICAL : state(warn) ? WARNING : OK;
      worst = Math.max(worst, level);
      parts.push(`${labelOf(fs)} ${usedPct.toFixed(0)}% used${level ? ` (${STATUS[level]})` : ''}`);
      const at = (t: Threshold) => Math.max(0, Math.round(t.kind === 'used-percent' ? (total * t.value) / 100 : total - t.value));
      perf.push(`'${labelOf(fs).replace(/'/g, "''")}'=${used}${args.inodes ? '' : 'B'};${at(warn)};${at(crit)};0;${total}`);
    }
    const inexact = filesystems.filter((fs) => fs.inexact).map((fs) => `${labelOf(fs)}: ${fs.inexact}`);
    if (f.deviceErrors.length || inexact.length) parts.push(`not read exactly: ${[...f.deviceErrors.map((e) => `${e.device}: ${e.error}`), ...inexact].join('; ')}`);
    say(worst, `${job.name}: ${parts.join(', ')}`, perf.join(' '));
  },
};

function labelOf(fs: FilesystemFacts): string {
  return fs.mountpoint || fs.device;
}
