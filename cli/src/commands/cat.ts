/**
 * guestlens cat: virt-cat's job. The bytes of guest files, streamed, through
 * the guest's mount map. On a terminal, control characters a hostile guest
 * may have planted (escape sequences) are shown escaped; --raw writes the
 * bytes as they are (a pipe always gets them as they are).
 */
import type { Argv, CommandModule } from 'yargs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UsageError } from '../errors.ts';
import { backingPolicy, guestOptions, oneGuest, type GuestArgs } from '../guest/guestJobs.ts';
import { openTree } from '../guest/openTree.ts';
import { resolveGuestPath } from '../guest/guestPaths.ts';
import { forEachPath } from '../guest/perPath.ts';
import { safeText } from '../output/names.ts';
import { terminalSafe } from '../output/terminal.ts';

interface CatArgs extends GuestArgs {
  operands: string[];
  raw: boolean;
  mount: string[];
}

export const catCommand: CommandModule<object, CatArgs> = {
  command: 'cat [operands..]',
  describe: 'Print files of a guest (like virt-cat)',
  builder: (y: Argv) =>
    guestOptions(y)
      .usage('guestlens cat IMAGE PATH... [options]\n\nPATH may be a Windows path (C:\\Windows\\win.ini) on Windows guests.')
      .positional('operands', { type: 'string', array: true, default: [] })
      .option('raw', { type: 'boolean', default: false, describe: 'on a terminal too, write control characters as they are' }) as unknown as Argv<CatArgs>,
  handler: async (args) => {
    const { job, operands } = await oneGuest('cat', args, args.operands);
    if (operands.length === 0) throw new UsageError('cat: name at least one file of the guest');
    const opened = await openTree(job, { backing: backingPolicy('cat', args.backing), mount: args.mount });
    try {
      for (const p of opened.problems) process.stderr.write(`guestlens: cat: ${job.name}: ${safeText(p)}\n`);
      const windows = opened.os?.type === 'windows';
      const escape = process.stdout.isTTY && !args.raw;
      await forEachPath('cat', job.name, operands, async (path) => {
        const stream = opened.tree.createReadStream(await resolveGuestPath(opened.tree, path, windows));
        await pipeline(stream, escape ? terminalSafe() : new Transform({ transform: (c, _e, cb) => cb(null, c) }), process.stdout, { end: false });
      });
    } finally {
      await opened.close();
    }
  },
};
