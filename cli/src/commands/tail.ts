/**
 * guestlens tail: virt-tail's job, within a second instead of every ~30 s.
 * The last lines of guest files, then with -f what the guest writes, read
 * from the image's bytes each poll (the guest refreshed first: qcow2 tables,
 * partitions, volumes, filesystems with their journals). Rotation,
 * truncation, files that come and go, the filesystem or the image replaced:
 * each said once on stderr (follow/tailedFile.ts). Exits 0 on SIGINT or
 * SIGTERM (the overlay removed), when --pid's process exits, or 1 when the
 * image itself is deleted.
 */
import { statSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import type { GuestTree } from '@guestlens/inspect';
import { isRetryable, isUserFacing } from '@guestlens/block';
import { EXIT_ERROR, EXIT_PARTIAL, UsageError } from '../errors.ts';
import { backingPolicy, guestOptions, oneGuest, type GuestArgs, type GuestJob } from '../guest/guestJobs.ts';
import { openTree, type OpenedTree } from '../guest/openTree.ts';
import { guestPath } from '../guest/guestPaths.ts';
import { safeText } from '../output/names.ts';
import { intervalMs, pollUntilStopped } from '../follow/poller.ts';
import { TailedFile, type TailStart } from '../follow/tailedFile.ts';
import { TailOutput } from '../follow/tailOutput.ts';

interface TailArgs extends GuestArgs {
  operands: string[];
  follow: boolean;
  lines?: string;
  bytes?: string;
  interval: number;
  quiet: boolean;
  json: boolean;
  pid?: number;
  raw: boolean;
  mount: string[];
}

export const tailCommand: CommandModule<object, TailArgs> = {
  command: 'tail [operands..]',
  describe: 'The last lines of guest files, and with -f what the guest writes to them (like virt-tail, within a second)',
  builder: (y: Argv) =>
    guestOptions(y)
      .usage('guestlens tail IMAGE PATH... [options]\n\nA data disk with one filesystem is read as if it were mounted at /.')
      .positional('operands', { type: 'string', array: true, default: [] })
      .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'keep printing what the guest appends (rotation and truncation followed)' })
      .option('lines', { alias: 'n', type: 'string', describe: 'the last N lines (default 10), or +K: from line K' })
      .option('bytes', { alias: 'c', type: 'string', describe: 'the last N bytes, or +K: from byte K' })
      .option('interval', { type: 'number', default: 1, describe: 'seconds between polls with -f (fractions allowed)' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no --- PATH --- banners between files' })
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object per line: {path, line, inode, offset}' })
      .option('pid', { type: 'number', describe: 'with -f: stop when this process (the VM) exits' })
      .option('raw', { type: 'boolean', default: false, describe: 'on a terminal too, print control characters as they are' }) as unknown as Argv<TailArgs>,
  handler: async (args) => {
    const { job, operands } = await oneGuest('tail', args, args.operands);
    if (operands.length === 0) throw new UsageError('tail: name the files to follow: guestlens tail IMAGE PATH...');
    const start = startOption(args);
    let interval = 1000;
    try {
      interval = intervalMs(args.interval);
    } catch (err) {
      throw new UsageError(`tail: ${(err as Error).message}`);
    }
    const say = (m: string) => process.stderr.write(`guestlens: tail: ${job.name}: ${safeText(m)}\n`);
    const open = () => openTree(job, { backing: backingPolicy('tail', args.backing), mount: args.mount });
    let opened = await open();
    const output = new TailOutput({ json: args.json, banners: operands.length > 1 && !args.quiet, escape: process.stdout.isTTY === true && !args.raw, guestName: job.name });
    try {
      for (const p of opened.problems) say(p);
      const windows = opened.os?.type === 'windows';
      const files = operands.map((p) => new TailedFile(guestPath(p, windows), output));
      let failed = 0;
      for (const f of files) {
        try {
          await f.start(opened.tree, start, args.follow);
        } catch (err) {
          if (!isUserFacing(err)) throw err;
          failed++;
          say((err as Error).message);
        }
        await output.flush();
      }
      if (!args.follow) {
        if (failed) process.exitCode = failed === files.length ? EXIT_ERROR : EXIT_PARTIAL;
        return;
      }
      let identity = imageIdentity(job);
      let uuids = await filesystemUuids(opened);
      const reopen = async (why: string) => {
        say(why);
        await opened.close();
        opened = await open();
        for (const f of files) await f.reattach(opened.tree);
        uuids = await filesystemUuids(opened);
      };
      const stopped = await pollUntilStopped({
        intervalMs: interval,
        pid: args.pid,
        tick: async () => {
          const now = imageIdentity(job);
          const gone = now.findIndex((x) => x === undefined);
          if (gone >= 0) {
            say(`${job.images[gone].path}: the image was deleted; nothing more to follow`);
            process.exitCode = EXIT_ERROR;
            return false;
          }
          try {
            const changed = now.findIndex((x, i) => x !== identity[i]);
            if (changed >= 0) {
              await reopen(`${job.images[changed].path}: the image was replaced by another file; reading the new one (files go on where they were when the same inode is there)`);
              identity = now;
            } else {
              const r = await opened.guest.refresh();
              if (r.devicesChanged) {
                say("the guest's partitions or volumes changed; following the files on the new ones");
                opened.tree = await remount(opened);
                for (const f of files) await f.reattach(opened.tree);
              }
              const nowUuids = await filesystemUuids(opened);
              for (const [device, uuid] of nowUuids) {
                const was = uuids.get(device);
                if (was !== undefined && was !== uuid) {
                  say(`${device}: the filesystem was replaced (UUID ${was} is now ${uuid}); following the files on it from their start`);
                  opened.tree = await remount(opened);
                  for (const f of files) f.forget();
                }
              }
              uuids = nowUuids;
            }
          } catch (err) {
            // Caught mid-write: the next poll reads again.
            if (isRetryable(err)) return;
            throw err;
          }
          for (const f of files) {
            try {
              await f.poll(opened.tree);
            } catch (err) {
              if (!isRetryable(err)) throw err;
            }
          }
          await output.flush();
        },
      });
      if (stopped !== 'done') {
        for (const f of files) f.flushPartial();
        await output.flush();
      }
    } finally {
      await opened.close();
    }
  },
};

/** -n N / -n +K / -c N / -c +K, checked. */
function startOption(args: TailArgs): TailStart {
  const parse = (option: string, value: string): { from: boolean; n: number } => {
    const m = /^(\+)?(\d+)$/.exec(value.trim());
    if (!m) throw new UsageError(`tail: ${option} ${value}: give a number N (the last N) or +K (from the K-th)`);
    const n = Number(m[2]);
    if (!Number.isSafeInteger(n)) throw new UsageError(`tail: ${option} ${value}: too large`);
    return { from: m[1] === '+', n };
  };
  if (args.bytes !== undefined && args.lines !== undefined) throw new UsageError('tail: give -n or -c, not both');
  if (args.bytes !== undefined) {
    const b = parse('-c', String(args.bytes));
    return b.from ? { fromByte: b.n } : { bytes: b.n };
  }
  if (args.lines !== undefined) {
    const l = parse('-n', String(args.lines));
    return l.from ? { fromLine: l.n } : { lines: l.n };
  }
  return { lines: 10 };
}

/** dev:ino of each image file (undefined: gone), to notice it deleted or replaced. */
function imageIdentity(job: GuestJob): (string | undefined)[] {
  return job.images.map((i) => {
    try {
      const st = statSync(i.path);
      return `${st.dev}:${st.ino}`;
    } catch {
      return undefined;
    }
  });
}

/** The UUID of each mounted filesystem, to notice one replaced (mkfs, a restored backup) on the same device. */
async function filesystemUuids(opened: OpenedTree): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>();
  for (const m of opened.tree.mounted) out.set(m.device, (await opened.guest.filesystem(m.device))?.uuid);
  return out;
}

async function remount(opened: OpenedTree): Promise<GuestTree> {
  const { GuestTree } = await import('@guestlens/inspect');
  return GuestTree.open(opened.guest, opened.tree.mounted.map((m) => ({ device: m.device, mountpoint: m.mountpoint })));
}
