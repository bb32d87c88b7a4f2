/**
 * guestlens timeline: The Sleuth Kit's body file of a guest (what
 * `fls -r -m /` writes), for `mactime -b`: every entry below DIR (default
 * the guest's root) through the mount map, in on-disk order, and with
 * --deleted the deleted inodes each filesystem still describes, as TSK's
 * orphans. --md5 fills the MD5 column.
 */
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.ts';
import { backingPolicy, guestOptions, oneGuest, type GuestArgs } from '../guest/guestJobs.ts';
import { openTree } from '../guest/openTree.ts';
import { safeText } from '../output/names.ts';
import { bodyLine, bodyName, tskMode } from '../files/bodyFile.ts';
import { checksumStream } from '../files/checksum.ts';

interface TimelineArgs extends GuestArgs {
  operands: string[];
  deleted: boolean;
  md5: boolean;
  mount: string[];
}

export const timelineCommand: CommandModule<object, TimelineArgs> = {
  command: 'timeline [operands..]',
  describe: "A body file of the guest's files for The Sleuth Kit's mactime (like fls -r -m /)",
  builder: (y: Argv) =>
    guestOptions(y)
      .usage('guestlens timeline IMAGE [DIR] [--deleted] [--md5]\n\nWrites TSK body-file lines (version 3); read them with mactime -b FILE.')
      .positional('operands', { type: 'string', array: true, default: [] })
      .option('deleted', { type: 'boolean', default: false, describe: 'also deleted inodes the filesystems still hold (TSK orphans)' })
      .option('md5', { type: 'boolean', default: false, describe: 'fill the MD5 column for regular files' }) as unknown as Argv<TimelineArgs>,
  handler: async (args) => {
    const { job, operands } = await oneGuest('timeline', args, args.operands);
    if (operands.length > 1) throw new UsageError('timeline: name at most one directory of the guest');
    const dir = operands[0] ?? '/';
    const opened = await openTree(job, { backing: backingPolicy('timeline', args.backing), mount: args.mount });
    try {
      for (const p of opened.problems) process.stderr.write(`guestlens: timeline: ${job.name}: ${safeText(p)}\n`);
      const tree = opened.tree;
      const base = (await tree.resolve(dir, false)).canonicalPath;
      for await (const e of tree.walk(dir)) {
        if (e.depth === 0) continue;
        const md5 = args.md5 && e.stat.type === 'file' ? await checksumStream('md5', tree.createReadStream(e.path)) : undefined;
        const name = bodyName(e.rawPath) + (e.target !== undefined ? ` -> ${bodyName(Buffer.from(e.target, 'utf8'))}` : '');
        process.stdout.write(bodyLine({ md5, name, inode: e.ino, mode: tskMode(e.entryType ?? e.stat.type, e.stat), stat: e.stat }));
      }
      // TSK lists its virtual orphan directory always, and the orphans in it with --deleted.
      {
        for (const m of tree.mounted) {
          const under = base === '/' || m.mountpoint === base || m.mountpoint.startsWith(`${base}/`);
          const fs = m.filesystem.fs;
          if (!under || !fs.inodes) continue;
          const prefix = m.mountpoint === '/' ? '' : m.mountpoint;
          const last = (await fs.statfs()).files;
          process.stdout.write(bodyLine({ name: `${bodyName(Buffer.from(prefix))}/$OrphanFiles`, inode: last + 1, mode: 'V/V---------', stat: undefined }));
          if (!args.deleted) continue;
          for await (const d of fs.inodes({ deleted: true })) {
            if (!d.deleted) continue;
            process.stdout.write(bodyLine({ name: `${bodyName(Buffer.from(prefix))}/$OrphanFiles/OrphanFile-${d.ino} (deleted)`, inode: d.ino, mode: tskMode(undefined, d.stat), stat: d.stat }));
          }
        }
      }
    } finally {
      await opened.close();
    }
  },
};
