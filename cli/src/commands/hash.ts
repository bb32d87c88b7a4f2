/**
 * guestlens hash: checksums of guest files, printed as sha256sum and its
 * siblings print them ("HASH  PATH"), so `sha256sum -c` can check a copy.
 */
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.ts';
import { backingPolicy, guestOptions, oneGuest, type GuestArgs } from '../guest/guestJobs.ts';
import { openTree } from '../guest/openTree.ts';
import { resolveGuestPath } from '../guest/guestPaths.ts';
import { forEachPath } from '../guest/perPath.ts';
import { displayName, safeText } from '../output/names.ts';
import { CHECKSUMS, checksumAlgorithm, checksumStream } from '../files/checksum.ts';

interface HashArgs extends GuestArgs {
  operands: string[];
  algorithm: string;
  json: boolean;
  mount: string[];
}

export const hashCommand: CommandModule<object, HashArgs> = {
  command: 'hash [operands..]',
  describe: 'Checksums of guest files (sha256 by default)',
  builder: (y: Argv) =>
    guestOptions(y)
      .usage('guestlens hash IMAGE PATH... [--algorithm sha256]')
      .positional('operands', { type: 'string', array: true, default: [] })
      .option('algorithm', { type: 'string', default: 'sha256', describe: `one of ${CHECKSUMS.join(', ')}` })
      .option('json', { type: 'boolean', default: false, describe: 'JSON: one object per file' }) as unknown as Argv<HashArgs>,
  handler: async (args) => {
    const algorithm = checksumAlgorithm(args.algorithm, '--algorithm');
    const { job, operands } = await oneGuest('hash', args, args.operands);
    if (operands.length === 0) throw new UsageError('hash: name at least one file of the guest');
    const opened = await openTree(job, { backing: backingPolicy('hash', args.backing), mount: args.mount });
    const out: object[] = [];
    try {
      for (const p of opened.problems) process.stderr.write(`guestlens: hash: ${job.name}: ${safeText(p)}\n`);
      const windows = opened.os?.type === 'windows';
      await forEachPath('hash', job.name, operands, async (path) => {
        const sum = await checksumStream(algorithm, opened.tree.createReadStream(await resolveGuestPath(opened.tree, path, windows)));
        if (args.json) out.push({ path, algorithm, hash: sum });
        else process.stdout.write(`${sum}  ${displayName(path)}\n`);
      });
      if (args.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    } finally {
      await opened.close();
    }
  },
};
