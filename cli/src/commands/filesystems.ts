/**
 * guestlens filesystems: virt-filesystems's job. What the guest's disks hold:
 * filesystems (with --extra also swap and unknown contents), logical volumes,
 * volume groups, physical volumes, partitions and block devices, in
 * virt-filesystems's order and columns (Name, Type, VFS, Label, MBR, Size,
 * Parent, UUID), plain, --csv (byte for byte what scripts parse) or --json.
 */
import type { Argv, CommandModule } from 'yargs';
import type { Guest, GuestFilesystemInfo } from '@guestlens/inspect';
import { UsageError, EXIT_PARTIAL } from '../errors.ts';
import { backingPolicy, guestOptions, oneGuest, type GuestArgs } from '../guest/guestJobs.ts';
import { csvLine } from '../output/csv.ts';
import { humanSize } from '../output/humanSize.ts';
import { displayName } from '../output/names.ts';

interface FilesystemsArgs extends GuestArgs {
  images: string[];
  all: boolean;
  filesystems: boolean;
  extra: boolean;
  partitions: boolean;
  parts: boolean;
  blkdevs: boolean;
  lvs: boolean;
  vgs: boolean;
  pvs: boolean;
  long: boolean;
  uuid: boolean;
  'human-readable': boolean;
  csv: boolean;
  json: boolean;
}

export interface FsRow {
  name: string;
  type: 'filesystem' | 'lv' | 'vg' | 'pv' | 'partition' | 'device';
  vfs?: string;
  label?: string;
  mbr?: string;
  size: number;
  parent?: string;
  uuid?: string;
}

/** Types that are not mountable filesystems: listed with --extra only. */
const EXTRA = new Set(['swap', 'swsuspend', 'unknown', 'jbd', 'linux_raid_member', 'crypto_LUKS']);

export const filesystemsCommand: CommandModule<object, FilesystemsArgs> = {
  command: 'filesystems [images..]',
  describe: 'The filesystems, partitions, volumes and devices of a guest (like virt-filesystems)',
  builder: (y: Argv) =>
    guestOptions(y, { mount: false })
      .usage('guestlens filesystems IMAGE [options]\n\nWhat a guest\'s disks hold, in virt-filesystems\'s columns. By default only filesystems are listed.')
      .positional('images', { type: 'string', array: true, default: [], describe: 'the guest\'s disk image' })
      .option('all', { type: 'boolean', default: false, describe: 'everything: filesystems (and --extra), partitions, block devices, LVs, VGs, PVs' })
      .option('filesystems', { type: 'boolean', default: false, describe: 'mountable filesystems (the default)' })
      .option('extra', { type: 'boolean', default: false, describe: 'also swap, unknown contents and other non-mountable ones' })
      .option('partitions', { type: 'boolean', default: false, describe: 'partitions' })
      .option('parts', { type: 'boolean', default: false, hidden: true })
      .option('blkdevs', { type: 'boolean', default: false, describe: 'block devices (the disks)' })
      .option('lvs', { type: 'boolean', default: false, describe: 'LVM logical volumes' })
      .option('vgs', { type: 'boolean', default: false, describe: 'LVM volume groups' })
      .option('pvs', { type: 'boolean', default: false, describe: 'LVM physical volumes' })
      .option('long', { alias: 'l', type: 'boolean', default: false, describe: 'every column' })
      .option('uuid', { type: 'boolean', default: false, describe: 'add the UUID column (with --long)' })
      .option('human-readable', { alias: 'h', type: 'boolean', default: false, describe: 'sizes in powers of 1024 (with --long)' })
      .option('csv', { type: 'boolean', default: false, describe: 'comma-separated values, as virt-filesystems --csv' })
      .option('json', { type: 'boolean', default: false, describe: 'JSON: one object per row, every column' }) as unknown as Argv<FilesystemsArgs>,
  handler: async (args) => {
    if (args.csv && args.json) throw new UsageError('filesystems: choose one of --csv and --json');
    if (args.csv && args['human-readable']) throw new UsageError('filesystems: -h and --csv cannot be used together');
    const { job } = await oneGuest('filesystems', args, args.images);
    if (job.images.length === 0) throw new UsageError('filesystems: name the guest');
    const { openGuest } = await import('@guestlens/inspect');
    const guest = await openGuest(job.images, { backing: backingPolicy('filesystems', args.backing) });
    try {
      const want = {
        filesystems: args.all || args.filesystems || args.extra || !(args.partitions || args.parts || args.blkdevs || args.lvs || args.vgs || args.pvs),
        extra: args.all || args.extra,
        partitions: args.all || args.partitions || args.parts,
        blkdevs: args.all || args.blkdevs,
        lvs: args.all || args.lvs,
        vgs: args.all || args.vgs,
        pvs: args.all || args.pvs,
      };
      const rows = await collectRows(guest, want);
      for (const p of job.unreadable) process.stderr.write(`guestlens: filesystems: ${job.name}: ${p}\n`);
      for (const w of guest.warnings) process.stderr.write(`guestlens: filesystems: ${job.name}: ${w.device}: ${w.message.replace(`${w.image}: `, '')}\n`);
      if (args.json) process.stdout.write(`${JSON.stringify(rows.map(jsonRow), null, 2)}\n`);
      else process.stdout.write(render(rows, { long: args.long || args.csv, uuid: args.uuid, human: args['human-readable'], csv: args.csv }));
      if (job.unreadable.length || guest.warnings.length) process.exitCode = EXIT_PARTIAL;
    } finally {
      await guest.close();
    }
  },
};

interface Want {
  filesystems: boolean;
  extra: boolean;
  partitions: boolean;
  blkdevs: boolean;
  lvs: boolean;
  vgs: boolean;
  pvs: boolean;
}

export async function collectRows(guest: Guest, want: Want): Promise<FsRow[]> {
  const all = await guest.filesystems();
  const rows: FsRow[] = [];
  if (want.filesystems) {
    for (const f of all) {
      if (f.consumedBy) continue;
      if (EXTRA.has(f.type) || f.type === 'LVM2_member') {
        if (!want.extra || f.type === 'LVM2_member') continue;
      }
      rows.push({ name: f.device, type: 'filesystem', vfs: f.type, label: f.label, size: await filesystemSize(f), uuid: f.uuid });
    }
  }
  if (want.lvs) for (const f of all.filter((x) => x.kind === 'logical-volume')) rows.push({ name: f.device, type: 'lv', size: f.size });
  if (want.pvs) for (const f of all.filter((x) => x.type === 'LVM2_member')) rows.push({ name: f.device, type: 'pv', size: f.size, uuid: f.uuid });
  if (want.partitions) {
    for (const d of guest.disks) {
      for (const p of d.partitionTable?.partitions ?? []) {
        if (p.kind === 'extended') continue;
        rows.push({
          name: `${d.device}${p.number}`,
          type: 'partition',
          mbr: p.mbrType === undefined ? undefined : p.mbrType.toString(16).padStart(2, '0'),
          size: p.size,
          parent: d.device,
          uuid: p.uuid,
        });
      }
    }
  }
  if (want.blkdevs) for (const d of guest.disks) rows.push({ name: d.device, type: 'device', size: d.source.size });
  return rows;
}

/** A filesystem's size as virt-filesystems shows it: its statfs blocks (what df calls 1K-blocks, in bytes), else its device's size. */
async function filesystemSize(f: GuestFilesystemInfo): Promise<number> {
  try {
    const st = await (await f.open()).statfs();
    return st.blocks * st.bsize;
  } catch {
    return f.size;
  }
}

function render(rows: FsRow[], o: { long: boolean; uuid: boolean; human: boolean; csv: boolean }): string {
  if (!o.long) return rows.map((r) => `${displayName(r.name)}\n`).join('');
  const header = ['Name', 'Type', 'VFS', 'Label', 'MBR', 'Size', 'Parent', ...(o.uuid ? ['UUID'] : [])];
  const cells = rows.map((r) => [
    r.name,
    r.type,
    r.vfs ?? '',
    r.label ?? '',
    r.mbr ?? '',
    o.human ? humanSize(r.size) : String(r.size),
    r.parent ?? '',
    ...(o.uuid ? [r.type === 'partition' ? '' : (r.uuid ?? '')] : []),
  ]);
  if (o.csv) return [header, ...cells].map((c) => `${csvLine(c.map((x) => displayName(x)))}\n`).join('');
  // virt-filesystems's table: each column as wide as its widest cell, two spaces apart; empty cells show "-".
  const table = [header, ...cells.map((c) => c.map((x) => (x === '' ? '-' : displayName(x))))];
  const widths = header.map((_, i) => Math.max(...table.map((r) => r[i].length)));
  return table.map((r) => `${r.map((x, i) => (i === r.length - 1 ? x : x.padEnd(widths[i] + 2))).join('')}\n`).join('');
}

function jsonRow(r: FsRow): Record<string, unknown> {
  return { name: r.name, type: r.type, vfs: r.vfs ?? null, label: r.label ?? null, mbr: r.mbr ?? null, size: r.size, parent: r.parent ?? null, uuid: r.uuid ?? null };
}
