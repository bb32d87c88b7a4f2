/**
 * guestlens copy-out: virt-copy-out's job. Files and whole trees of a guest
 * copied into a host directory, modes, times (and owners, as root) kept,
 * sparse files sparse, links as links; never anything outside the target
 * (see files/copyOut.ts). A progress bar on a terminal for large copies.
 */
import { statSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { EXIT_PARTIAL, UsageError } from '../errors.ts';
import { backingPolicy, guestOptions, oneGuest, type GuestArgs } from '../guest/guestJobs.ts';
import { openTree } from '../guest/openTree.ts';
import { guestPath } from '../guest/guestPaths.ts';
import { forEachPath } from '../guest/perPath.ts';
import { safeText } from '../output/names.ts';

interface CopyOutArgs extends GuestArgs {
  operands: string[];
  'no-owner': boolean;
  special: boolean;
  progress?: boolean;
  mount: string[];
}

/** Below this many bytes in all, no progress bar: it would only flicker. */
const PROGRESS_MIN_BYTES = 64 * 1024 * 1024;

export const copyOutCommand: CommandModule<object, CopyOutArgs> = {
  command: 'copy-out [operands..]',
  describe: 'Copy files or directories out of a guest (like virt-copy-out)',
  builder: (y: Argv) =>
    guestOptions(y)
      .usage('guestlens copy-out IMAGE GUESTPATH... HOSTDIR [options]\n\nHOSTDIR must exist. Modes and times are kept, owners too when run as root.')
      .positional('operands', { type: 'string', array: true, default: [] })
      .option('no-owner', { type: 'boolean', default: false, describe: 'do not set owners even as root' })
      .option('special', { type: 'boolean', default: false, describe: 'create device files and FIFOs instead of skipping them' })
      .option('progress', { type: 'boolean', describe: 'show a progress bar (default: on a terminal, for large copies)' }) as unknown as Argv<CopyOutArgs>,
  handler: async (args) => {
    const { job, operands } = await oneGuest('copy-out', args, args.operands);
    if (operands.length < 2) throw new UsageError('copy-out: name what to copy and where: guestlens copy-out IMAGE GUESTPATH... HOSTDIR');
    const hostDir = operands[operands.length - 1];
    let isDir = false;
    try {
      isDir = statSync(hostDir).isDirectory();
    } catch {
      /* reported below */
    }
    if (!isDir) throw new UsageError(`copy-out: ${hostDir}: not an existing directory on the host`);
    const opened = await openTree(job, { backing: backingPolicy('copy-out', args.backing), mount: args.mount });
    let notes = 0;
    const note = (m: string) => {
      notes++;
      process.stderr.write(`guestlens: copy-out: ${job.name}: ${safeText(m)}\n`);
    };
    try {
      for (const p of opened.problems) note(p);
      const windows = opened.os?.type === 'windows';
      const { copyOut } = await import('../files/copyOut.ts');
      const owner = !args['no-owner'] && process.getuid?.() === 0;
      const bar = await progressBar(opened.tree, operands.slice(0, -1).map((p) => guestPath(p, windows)), args.progress);
      try {
        await forEachPath('copy-out', job.name, operands.slice(0, -1), async (p) => {
          await copyOut(opened.tree, guestPath(p, windows), hostDir, { owner, special: args.special, note, onBytes: bar?.add });
        });
      } finally {
        bar?.stop();
      }
      if (notes > 0 && !process.exitCode) process.exitCode = EXIT_PARTIAL;
    } finally {
      await opened.close();
    }
  },
};

async function progressBar(tree: import('@guestlens/inspect').GuestTree, paths: string[], wanted: boolean | undefined): Promise<{ add(n: number): void; stop(): void } | undefined> {
  if (wanted === false || (wanted === undefined && !process.stderr.isTTY)) return undefined;
  let total = 0;
  for (const p of paths) {
    try {
      for await (const e of tree.walk(p)) if (e.stat.type === 'file') total += e.stat.size;
    } catch {
      // A path that cannot be walked is reported when it is copied.
    }
  }
  if (wanted === undefined && total < PROGRESS_MIN_BYTES) return undefined;
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar({ format: 'copy-out [{bar}] {percentage}% {value_mib}/{total_mib} MiB', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
  let done = 0;
  const mib = (n: number) => (n / 1048576).toFixed(1);
  bar.start(total, 0, { value_mib: mib(0), total_mib: mib(total) });
  return {
    add(n: number) {
      done += n;
      bar.update(done, { value_mib: mib(done) });
    },
    stop() {
      bar.stop();
    },
  };
}
