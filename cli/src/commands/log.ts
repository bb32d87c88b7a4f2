/**
 * guestlens log: virt-log's job, with journalctl's filters and output modes.
 * The guest's systemd journal (/var/log/journal/MACHINE-ID/*.journal,
 * archived and user files included), read from its bytes through the mount
 * map; -f follows it while journald writes (files ONLINE, rotation followed).
 * A guest without a journal: /var/log/messages or /var/log/syslog, as
 * virt-log falls back, and stderr says which source it used.
 */
import type { Argv, CommandModule } from 'yargs';
import type { GuestTree } from '@guestlens/inspect';
import type { JournalFile } from '@guestlens/journal';
import { isRetryable } from '@guestlens/block';
import { EXIT_ERROR, UsageError } from '../errors.ts';
import { backingPolicy, guestOptions, oneGuest, type GuestArgs } from '../guest/guestJobs.ts';
import { openTree, type OpenedTree } from '../guest/openTree.ts';
import { safeText } from '../output/names.ts';
import { escapeLine } from '../output/terminal.ts';
import { intervalMs, pollUntilStopped } from '../follow/poller.ts';

interface LogArgs extends GuestArgs {
  operands: string[];
  lines?: number;
  follow: boolean;
  since?: string;
  until?: string;
  unit: string[];
  priority?: string;
  identifier: string[];
  boot?: string | boolean;
  output: string;
  utc: boolean;
  interval: number;
  pid?: number;
  raw: boolean;
  mount: string[];
}

const MODES = ['short', 'short-iso', 'short-iso-precise', 'short-precise', 'short-monotonic', 'short-unix', 'json', 'export', 'cat'];
const JOURNAL_DIRS = ['/var/log/journal', '/run/log/journal'];
const TEXT_LOGS = ['/var/log/messages', '/var/log/syslog'];
/** Journal files read at most (a guest with years of archives is still bounded). */
const MAX_FILES = 4096;
/** Reads of a journal caught mid-append before the error is the user's (without -f). */
const READ_ATTEMPTS = 5;

export const logCommand: CommandModule<object, LogArgs> = {
  command: 'log [operands..]',
  describe: "A guest's logs: its systemd journal with journalctl's filters and output modes (like virt-log)",
  builder: (y: Argv) =>
    guestOptions(y)
      .usage('guestlens log IMAGE [FIELD=VALUE...] [options]')
      .positional('operands', { type: 'string', array: true, default: [] })
      .option('lines', { alias: 'n', type: 'number', describe: 'the last N entries' })
      .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'keep printing new entries as the guest writes them' })
      .option('since', { alias: 'S', type: 'string', describe: 'entries on or after this time ("2024-01-02 03:04", "-1h", "yesterday", "@EPOCH")' })
      .option('until', { alias: 'U', type: 'string', describe: 'entries on or before this time' })
      .option('unit', { alias: 'u', type: 'string', array: true, nargs: 1, default: [], describe: 'entries of this systemd unit (repeatable; globs allowed)' })
      .option('priority', { alias: 'p', type: 'string', describe: 'a priority or range ("err", "warning..notice", 0..7)' })
      .option('identifier', { alias: 't', type: 'string', array: true, nargs: 1, default: [], describe: 'entries with this SYSLOG_IDENTIFIER (repeatable)' })
      .option('boot', { alias: 'b', describe: 'one boot: 0 (the last), -1, 1, a boot id, ID+N' })
      .option('output', { alias: 'o', type: 'string', default: 'short', choices: MODES, describe: 'output mode, as journalctl -o' })
      .option('utc', { type: 'boolean', default: false, describe: 'times in UTC' })
      .option('interval', { type: 'number', default: 1, describe: 'seconds between polls with -f (fractions allowed)' })
      .option('pid', { type: 'number', describe: 'with -f: stop when this process (the VM) exits' })
      .option('raw', { type: 'boolean', default: false, describe: 'on a terminal too, print control characters of messages as they are' }) as unknown as Argv<LogArgs>,
  handler: async (args) => {
    const { job, operands } = await oneGuest('log', args, args.operands);
    for (const m of operands) if (!/^[A-Z0-9_]+=/.test(m) && m !== '+') throw new UsageError(`log: ${m}: give matches as FIELD=VALUE (FIELD in capitals), or "+" between them`);
    let interval = 1000;
    try {
      interval = intervalMs(args.interval);
    } catch (err) {
      throw new UsageError(`log: ${(err as Error).message}`);
    }
    const journal = await import('@guestlens/journal');
    const opened = await openTree(job, { backing: backingPolicy('log', args.backing), mount: args.mount });
    const say = (m: string) => process.stderr.write(`guestlens: log: ${job.name}: ${safeText(m)}\n`);
    try {
      for (const p of opened.problems) say(p);
      let files = await journalFiles(opened.tree, journal, say);
      if (files.length === 0) {
        await textFallback(opened, args, say);
        return;
      }
      const now = BigInt(Date.now()) * 1000n;
      const query = await journal.JournalQuery.open(files, {
        lines: args.lines,
        since: args.since === undefined ? undefined : usage('--since', () => journal.parseTimestamp(args.since!, now)),
        until: args.until === undefined ? undefined : usage('--until', () => journal.parseTimestamp(args.until!, now)),
        boot: args.boot === undefined ? undefined : usage('--boot', () => journal.parseBootDescriptor(args.boot === true ? '0' : String(args.boot))),
        units: args.unit.length ? args.unit : undefined,
        identifiers: args.identifier.length ? args.identifier : undefined,
        priority: args.priority,
        matches: operands.length ? operands : undefined,
        follow: args.follow,
      });
      const printer = new journal.JournalPrinter(args.output as never, { utc: args.utc, escapeControl: process.stdout.isTTY && !args.raw });
      const drain = async () => {
        for await (const e of query.entries()) {
          let text: Buffer;
          try {
            text = await printer.print(e);
          } catch (err) {
            // Its fields caught half-written: shown on the next poll, not lost.
            if (isRetryable(err)) query.unread();
            throw err;
          }
          process.stdout.write(text);
        }
      };
      // A live guest's journal may be caught mid-append: refresh and go on from the same entry, a few times.
      for (let attempt = 1; ; attempt++) {
        try {
          await drain();
          break;
        } catch (err) {
          if (!isRetryable(err) || attempt >= READ_ATTEMPTS) throw err;
          await opened.guest.refresh();
          await query.refresh();
        }
      }
      if (!args.follow) {
        process.stdout.write(printer.finish());
        for (const w of query.warnings) say(w);
        return;
      }
      for (const w of query.warnings) say(w);
      let warned = query.warnings.length;
      await pollUntilStopped({
        intervalMs: interval,
        pid: args.pid,
        tick: async () => {
          try {
            const r = await opened.guest.refresh();
            if (r.devicesChanged) say('the guest\'s partitions or volumes changed; following the journal on the new ones');
            const now = await journalFiles(opened.tree, journal, () => undefined);
            const known = new Set(files.map((f) => f.header.fileId));
            if (now.some((f) => !known.has(f.header.fileId))) {
              files = now;
              query.setFiles(files);
            }
            await query.refresh();
            await drain();
            // Said as they happen: a follower runs for days, and a skipped entry must not go unmentioned.
            for (const w of query.warnings.slice(warned)) say(w);
            warned = query.warnings.length;
          } catch (err) {
            // A file caught mid-write: the next poll reads it again after its refresh.
            if (!isRetryable(err)) throw err;
          }
        },
      });
    } finally {
      await opened.close();
    }
  },
};

type Journal = typeof import('@guestlens/journal');

/** A value of the user's that the journal library cannot parse is a usage error (exit 2), named by its option. */
function usage<T>(option: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new UsageError(`log: ${option}: ${(err as Error).message}`);
  }
}

/** Every journal file of the guest, opened live (journald may be writing them). */
async function journalFiles(tree: GuestTree, journal: Journal, say: (m: string) => void): Promise<JournalFile[]> {
  const { GuestFileSource } = await import('@guestlens/inspect');
  const paths: string[] = [];
  for (const dir of JOURNAL_DIRS) {
    let machines;
    try {
      machines = await tree.readdir(dir);
    } catch {
      continue;
    }
    for (const m of machines) {
      if (m.type !== 'directory' && m.type !== 'unknown') continue;
      let entries;
      try {
        entries = await tree.readdir(`${dir}/${m.name}`);
      } catch {
        continue;
      }
      for (const e of entries) if (journal.isJournalFileName(e.name) && paths.length < MAX_FILES) paths.push(`${dir}/${m.name}/${e.name}`);
    }
  }
  const sources = [];
  for (const p of paths) {
    try {
      sources.push(await GuestFileSource.open(tree, p));
    } catch (err) {
      say(`${p}: ${(err as Error).message}`);
    }
  }
  const { files, failed } = await journal.openJournalFiles(sources, { live: true });
  for (const f of failed) say(`${f.source.name}: ${f.error instanceof Error ? f.error.message : String(f.error)}`);
  return files;
}

/** No journal: the classic syslog files, the last -n lines (or all), and -f by size. */
async function textFallback(opened: OpenedTree, args: LogArgs, say: (m: string) => void): Promise<void> {
  for (const path of TEXT_LOGS) {
    let data: Buffer;
    try {
      data = await opened.tree.readFile(path, { maxBytes: 256 * 1024 * 1024 });
    } catch {
      continue;
    }
    say(`no systemd journal in the guest; showing ${path}`);
    let lines = data.toString('utf8').split('\n');
    if (lines.at(-1) === '') lines.pop();
    if (args.lines !== undefined) lines = lines.slice(-args.lines);
    const tty = process.stdout.isTTY && !args.raw;
    for (const l of lines) process.stdout.write(`${tty ? escapeLine(Buffer.from(l)) : l}\n`);
    return;
  }
  say(`the guest has no systemd journal (${JOURNAL_DIRS.join(', ')}) and no ${TEXT_LOGS.join(' or ')}`);
  process.exitCode = EXIT_ERROR;
}
