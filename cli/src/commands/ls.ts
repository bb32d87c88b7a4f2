/**
 * guestlens ls: virt-ls's job. A directory of the guest (through its mount
 * map, or -m), plain, -l (ls -la), -R (every path below) or -lR with
 * virt-ls's columns (--checksum, --times, --uids, --extra-stats, -h, --csv),
 * or --json. Any long-format option implies -lR.
 */
import type { Argv, CommandModule } from 'yargs';
import type { WalkEntry } from '@guestlens/inspect';
import { EXIT_PARTIAL, UsageError } from '../errors.ts';
import { backingPolicy, guestOptions, oneGuest, type GuestArgs } from '../guest/guestJobs.ts';
import { openTree } from '../guest/openTree.ts';
import { jsonName, displayName, safeText } from '../output/names.ts';
import { jsonArrayWriter } from '../output/print.ts';
import { checksumAlgorithm, checksumStream, type ChecksumAlgorithm } from '../files/checksum.ts';
import { deviceNumbers } from '../files/devNumbers.ts';
import { longLine, lsLa, type LlEntry, type LongOptions } from '../files/virtLs.ts';
import { timestampJson } from '../files/statJson.ts';

interface LsArgs extends GuestArgs {
  operands: string[];
  long: boolean;
  recursive: boolean;
  checksum?: string | boolean;
  times: boolean;
  'time-t': boolean;
  'time-relative': boolean;
  'time-days': boolean;
  uids: boolean;
  'extra-stats': boolean;
  'human-readable': boolean;
  csv: boolean;
  json: boolean;
  mount: string[];
}

export const lsCommand: CommandModule<object, LsArgs> = {
  command: 'ls [operands..]',
  describe: 'List a directory of a guest (like virt-ls)',
  builder: (y: Argv) =>
    guestOptions(y)
      .usage('guestlens ls IMAGE DIR [options]\nguestlens ls -a DISK [-a DISK]... DIR [options]\n\nLists DIR of the guest, through its mount map (or -m). Times in -lR are local (TZ); -l shows UTC, as virt-ls does.')
      .positional('operands', { type: 'string', array: true, default: [], describe: 'IMAGE (unless -a/-d/--domain-xml) then DIR' })
      .option('long', { alias: 'l', type: 'boolean', default: false, describe: 'long listing (ls -la; with -R: virt-ls columns)' })
      .option('recursive', { alias: 'R', type: 'boolean', default: false, describe: 'everything below DIR' })
      .option('checksum', { describe: 'add a checksum of each regular file (md5 by default; crc, sha1, sha224, sha256, sha384, sha512); implies -lR' })
      .option('times', { type: 'boolean', default: false, describe: 'add atime, mtime, ctime; implies -lR' })
      .option('time-t', { type: 'boolean', default: false, describe: 'times as seconds since the epoch; implies --times' })
      .option('time-relative', { type: 'boolean', default: false, describe: 'times as seconds before now; implies --times' })
      .option('time-days', { type: 'boolean', default: false, describe: 'times as days before now; implies --times' })
      .option('uids', { type: 'boolean', default: false, describe: 'add owner and group ids; implies -lR' })
      .option('extra-stats', { type: 'boolean', default: false, describe: 'add device, inode, links, rdev, blocks; implies -lR' })
      .option('human-readable', { alias: 'h', type: 'boolean', default: false, describe: 'sizes in powers of 1024; implies -lR' })
      .option('csv', { type: 'boolean', default: false, describe: 'CSV, as virt-ls --csv; implies -lR' })
      .option('json', { type: 'boolean', default: false, describe: 'JSON: one object per entry (every field, names as bytes where they are not UTF-8)' }) as unknown as Argv<LsArgs>,
  handler: async (args) => {
    const { job, operands } = await oneGuest('ls', args, args.operands);
    if (operands.length !== 1) throw new UsageError('ls: name one directory of the guest (guestlens ls IMAGE DIR)');
    const dir = operands[0];
    const checksum = args.checksum === undefined || args.checksum === false ? undefined : checksumAlgorithm(args.checksum === true || args.checksum === '' ? 'md5' : String(args.checksum), '--checksum');
    const times: LongOptions['times'] = args['time-t'] ? 'time-t' : args['time-relative'] ? 'seconds' : args['time-days'] ? 'days' : args.times ? 'date' : undefined;
    const structured = args.csv || args['human-readable'] || args.uids || args['extra-stats'] || times !== undefined || checksum !== undefined;
    if (args.json && args.csv) throw new UsageError('ls: choose one of --csv and --json');
    const opened = await openTree(job, { backing: backingPolicy('ls', args.backing), mount: args.mount });
    try {
      for (const p of opened.problems) process.stderr.write(`guestlens: ls: ${job.name}: ${safeText(p)}\n`);
      const lvs = (await opened.guest.filesystems()).filter((f) => f.kind === 'logical-volume').map((f) => f.device);
      const now = Math.floor(Date.now() / 1000);
      const tree = opened.tree;
      const start = await tree.stat(dir);
      if (start.type !== 'directory' && (args.recursive || !args.long)) {
        const { GuestPathError } = await import('@guestlens/inspect');
        throw new GuestPathError('ENOTDIR', dir, (await tree.resolve(dir)).device, 'ls lists directories; guestlens stat describes one file');
      }
      if (args.json || (args.long && args.recursive) || structured) {
        const o: LongOptions = { csv: args.csv, human: args['human-readable'], uids: args.uids, times, extraStats: args['extra-stats'], now };
        const out = jsonArrayWriter();
        for await (const e of tree.walk(dir, { sorted: true })) {
          const sum = checksum && e.stat.type === 'file' ? await checksumStream(checksum, tree.createReadStream(e.path)) : undefined;
          const dev = deviceNumbers(e.device, lvs);
          if (args.json) out.push(jsonEntry(e, sum, checksum, dev));
          else process.stdout.write(longLine({ rawPath: e.rawPath, stat: e.stat, target: e.target, checksum: sum, dev, checksumColumn: checksum !== undefined }, o));
        }
        if (args.json) out.end();
      } else if (args.recursive) {
        const base = (await tree.resolve(dir)).canonicalPath;
        const prefix = base === '/' ? 1 : Buffer.byteLength(base) + 1;
        const paths: Buffer[] = [];
        for await (const e of tree.walk(dir)) if (e.depth > 0) paths.push(e.rawPath.subarray(prefix));
        paths.sort(Buffer.compare);
        for (const p of paths) process.stdout.write(`${displayName(p)}\n`);
      } else if (args.long) {
        const self = await tree.lstat(dir);
        const parent = await tree.stat(`${dir.replace(/\/+$/, '')}/..`);
        const entries: LlEntry[] = [{ rawName: Buffer.from('.'), stat: self }, { rawName: Buffer.from('..'), stat: parent }];
        for await (const e of tree.walk(dir, { recursive: false, sorted: true })) if (e.depth > 0) entries.push({ rawName: e.rawName, stat: e.stat, ...(e.target !== undefined ? { target: e.target } : {}) });
        process.stdout.write(lsLa(entries, now));
      } else {
        const names = (await tree.readdir(dir)).map((e) => e.rawName).sort(Buffer.compare);
        for (const n of names) process.stdout.write(`${displayName(n)}\n`);
      }
      if (opened.problems.length) process.exitCode = EXIT_PARTIAL;
    } finally {
      await opened.close();
    }
  },
};

function jsonEntry(e: WalkEntry, sum: string | undefined, algorithm: ChecksumAlgorithm | undefined, dev: { major: number; minor: number }): object {
  const st = e.stat;
  return {
    ...jsonName(e.rawPath, e.path, 'path'),
    type: st.type,
    mode: st.mode & 0o7777,
    size: st.size,
    uid: st.uid,
    gid: st.gid,
    nlink: st.nlink,
    ino: st.ino,
    dev: `${dev.major}:${dev.minor}`,
    device: e.device,
    blocks: st.blocks,
    ...(st.rdev ? { rdev: `${st.rdev.major}:${st.rdev.minor}` } : {}),
    atime: timestampJson(st.atime),
    mtime: timestampJson(st.mtime),
    ctime: timestampJson(st.ctime),
    ...(st.crtime ? { crtime: timestampJson(st.crtime) } : {}),
    ...(e.target !== undefined ? { target: e.target } : {}),
    ...(sum !== undefined && algorithm ? { checksum: { [algorithm]: sum } } : {}),
  };
}
