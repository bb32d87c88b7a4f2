/**
 * The tests' and the benchmark's stand-in for journalctl: print journal
 * files through the library as `journalctl --file=... -o MODE [options]`
 * would. Not a product command (the CLI wires the library to guest images).
 *
 *   tsx printJournal.ts '{"mode":"json","query":{...}}' FILE...
 */
import { RawFileSource } from '@guestlens/qcow2-js';
import { JournalFile, JournalPrinter, JournalQuery, type FormatOptions, type JournalQueryOptions, type OutputMode } from '@guestlens/journal';

interface Args {
  mode: OutputMode;
  query?: Omit<JournalQueryOptions, 'since' | 'until'> & { since?: string; until?: string };
  format?: FormatOptions;
}

const [spec, ...paths] = process.argv.slice(2);
const args = JSON.parse(spec) as Args;
const files: JournalFile[] = [];
for (const p of paths) files.push(await JournalFile.open(await RawFileSource.open(p)));
const q = args.query ?? {};
const query = await JournalQuery.open(files, { ...q, since: q.since === undefined ? undefined : BigInt(q.since), until: q.until === undefined ? undefined : BigInt(q.until) });
const printer = new JournalPrinter(args.mode, args.format);
const out = process.stdout;
let pending: Buffer[] = [];
let size = 0;
for await (const e of query.entries()) {
  const b = await printer.print(e);
  pending.push(b);
  size += b.length;
  if (size > 1 << 16) {
    if (!out.write(Buffer.concat(pending))) await new Promise((r) => out.once('drain', r));
    pending = [];
    size = 0;
  }
}
pending.push(Buffer.from(printer.finish()));
out.write(Buffer.concat(pending));
for (const w of query.warnings) process.stderr.write(`warning: ${w}\n`);
