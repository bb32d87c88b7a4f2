/**
 * `guestlens lock [--perm LIST] [--share LIST] IMAGE... -- COMMAND [ARGS]`:
 * like flock(1), run a command while holding QEMU-compatible locks on the
 * images, e.g. to keep every VM from opening them for write during a backup.
 */
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { Argv, CommandModule } from 'yargs';
// The lock machinery (koffi, a native module) loads when the command runs; the
// permission table is plain data (see cli/build.mjs).
import { LOCKABLE_PERMISSIONS } from '@guestlens/locking/permissions';
import type { ImageLock } from '@guestlens/locking';
import type { PermissionName } from '@guestlens/locking';
import { UsageError } from '../errors.ts';

interface LockArgs {
  images: string[];
  perm: string;
  share: string;
  '--'?: Array<string | number>;
}

export const DEFAULT_PERM = 'consistent read';
export const DEFAULT_SHARE = 'consistent read,write unchanged';

const LOCKABLE_NAMES = LOCKABLE_PERMISSIONS.map((p) => p.name);

/** "consistent read,write" (also consistent-read, CONSISTENT_READ), "all", "none" or "". */
export function parsePermissionList(option: string, text: string): PermissionName[] {
  const trimmed = text.trim().toLowerCase();
  if (trimmed === '' || trimmed === 'none') return [];
  if (trimmed === 'all') return [...LOCKABLE_NAMES];
  const names: PermissionName[] = [];
  for (const part of trimmed.split(',')) {
    const name = part.trim().replace(/[-_\s]+/g, ' ');
    const found = LOCKABLE_NAMES.find((n) => n === name);
    if (!found) {
      const hint = name === 'change children' ? ' (QEMU 7.2 no longer has it)' : '';
      throw new UsageError(`--${option}: unknown permission "${part.trim()}"${hint}; use a comma-separated list of ${LOCKABLE_NAMES.join(', ')}, or all, or none`);
    }
    if (!names.includes(found)) names.push(found);
  }
  return names;
}

// Forwarded to the command; Ctrl-C in a terminal reaches it directly as well.
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

/** Run the command with inherited stdio; resolve to the exit status a shell would report. */
function runCommand(file: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal);
    };
    for (const s of FORWARDED) process.on(s, forward);
    const done = (status: number): void => {
      for (const s of FORWARDED) process.off(s, forward);
      resolve(status);
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      // Shell conventions: 127 not found, 126 found but not runnable.
      const notFound = err.code === 'ENOENT';
      process.stderr.write(`guestlens: ${file}: ${notFound ? 'command not found' : `cannot run: ${err.message}`}\n`);
      done(notFound ? 127 : 126);
    });
    child.on('exit', (code, signal) => {
      done(code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0));
    });
  });
}

export const lockCommand: CommandModule<object, LockArgs> = {
  command: 'lock <images..>',
  describe: 'Run a command while holding QEMU-compatible locks on images (like flock)',
  builder: (y) =>
    y
      .parserConfiguration({ 'populate--': true })
      .usage('$0 lock [--perm LIST] [--share LIST] IMAGE... -- COMMAND [ARGS]')
      .positional('images', { type: 'string', array: true, demandOption: true, describe: 'Disk images (files or block devices); opened read-only, never written' })
      .option('perm', {
        type: 'string',
        default: DEFAULT_PERM,
        describe: 'Permissions to hold, as QEMU names them: consistent read, write, write unchanged, resize (comma-separated; all; none)',
      })
      .option('share', {
        type: 'string',
        default: DEFAULT_SHARE,
        describe: 'Permissions other processes may still use; every other one is refused to them',
      })
      .epilog(
        'The defaults hold the image exactly as a read-only QEMU does (qemu-io -r, -drive readonly=on on qcow2: bytes 100, 201, 203): ' +
          'readers may open it, anything that wants to write or resize it (a VM, qemu-img commit/resize/snapshot) fails with ' +
          'QEMU\'s "Failed to get "write" lock". If a VM already writes the image, lock fails the same way QEMU would, and the command is not run.\n\n' +
          'Locks are released when the command ends, and when guestlens gets SIGINT, SIGTERM, SIGHUP or SIGQUIT (forwarded to the command, ' +
          'then guestlens waits for it). Exit status: the command\'s (128+N if it died of signal N), 127 if it was not found, 1 if the locks could not be taken.\n\n' +
          'Example: guestlens lock --share "consistent read" disk.qcow2 -- cp --sparse=always disk.qcow2 /backup/',
      ) as unknown as Argv<LockArgs>,
  handler: async (argv) => {
    const command = (argv['--'] ?? []).map(String);
    if (command.length === 0) throw new UsageError('name the command to run after "--", e.g. guestlens lock disk.qcow2 -- cp disk.qcow2 /backup/');
    const perm = parsePermissionList('perm', argv.perm);
    const shared = parsePermissionList('share', argv.share);
    // So that `guestlens locks`, lslocks and ps name the holder "guestlens" rather than "node".
    process.title = 'guestlens';

    const locks: ImageLock[] = [];
    try {
      const seen = new Set<string>();
      for (const image of argv.images.map(String)) {
        // The same inode twice (a symlink, a repeated name) is locked once: a second lock would conflict with our first.
        const { acquire, imageIdentity } = await import('@guestlens/locking');
        const { dev, ino } = imageIdentity(image);
        if (seen.has(`${dev}:${ino}`)) continue;
        seen.add(`${dev}:${ino}`);
        const lock = await acquire(image, { perm, shared });
        locks.push(lock);
        for (const w of lock.warnings) process.stderr.write(`guestlens: warning: ${w}\n`);
      }
      process.exitCode = await runCommand(command[0], command.slice(1));
    } finally {
      await Promise.all(locks.map((l) => l.release()));
    }
  },
};
