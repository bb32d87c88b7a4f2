/**
 * The oracle: Debian's journalctl on the same files, with TZ=UTC and
 * SYSTEMD_COLORS=0, beside the library's output for the same query.
 */
import { execa } from 'execa';
import assert from 'node:assert/strict';
import { RawFileSource } from '@guestlens/qcow2-js';
import { JournalFile, JournalPrinter, JournalQuery, type FormatOptions, type JournalFileOptions, type JournalQueryOptions, type OutputMode } from '@guestlens/journal';

export interface Run {
  stdout: Buffer;
  stderr: string;
  exitCode: number;
}

export async function journalctl(args: string[]): Promise<Run> {
  const r = await execa('journalctl', args, {
    env: { TZ: 'UTC', SYSTEMD_COLORS: '0', SYSTEMD_PAGER: 'cat', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' },
    extendEnv: false,
    encoding: 'buffer',
    reject: false,
    stripFinalNewline: false,
  });
  return { stdout: Buffer.from(r.stdout as Uint8Array), stderr: Buffer.from(r.stderr as Uint8Array).toString(), exitCode: r.exitCode ?? -1 };
}

export async function openFiles(paths: string[], options: JournalFileOptions = {}): Promise<JournalFile[]> {
  const files: JournalFile[] = [];
  for (const p of paths) files.push(await JournalFile.open(await RawFileSource.open(p), options));
  return files;
}

export async function closeFiles(files: JournalFile[]): Promise<void> {
  for (const f of files) {
    await f.close();
    await f.source.close();
  }
}

/** What the library prints for a query (as journalctl -o MODE would). */
export async function ours(files: JournalFile[], mode: OutputMode, query: JournalQueryOptions = {}, format: FormatOptions = {}): Promise<Buffer> {
  const q = await JournalQuery.open(files, query);
  const printer = new JournalPrinter(mode, format);
  const parts: Buffer[] = [];
  for await (const e of q.entries()) parts.push(await printer.print(e));
  parts.push(Buffer.from(printer.finish()));
  return Buffer.concat(parts);
}

/**
 * The top-level "key":value members of a one-line JSON object, as raw text,
 * so that values are compared byte for byte while the key order (random in
 * journalctl, a hashmap's) is not.
 */
export function jsonMembers(line: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 1;
  const skipString = (k: number) => {
    k++;
    while (line[k] !== '"') k += line[k] === '\\' ? 2 : 1;
    return k + 1;
  };
  while (i < line.length - 1) {
    const keyEnd = skipString(i);
    const key = JSON.parse(line.slice(i, keyEnd)) as string;
    let k = keyEnd + 1; // past ':'
    const start = k;
    let depth = 0;
    for (;;) {
      const c = line[k];
      if (c === '"') {
        k = skipString(k);
        continue;
      }
      if (c === '[' || c === '{') depth++;
      else if (c === ']' || c === '}') {
        if (depth === 0) break;
        depth--;
      } else if (c === ',' && depth === 0) break;
      k++;
    }
    assert.ok(!out.has(key), `duplicate key ${key}`);
    out.set(key, line.slice(start, k));
    i = k + 1;
  }
  return out;
}

/** Assert two -o json outputs agree: the same lines, each with the same members, byte for byte. */
export function assertSameJson(actual: Buffer, expected: Buffer, what: string): void {
  const a = actual.toString('utf8').split('\n');
  const e = expected.toString('utf8').split('\n');
  assert.equal(a.length, e.length, `${what}: ${a.length - 1} entries, journalctl printed ${e.length - 1}`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === e[i]) continue;
    assert.deepEqual(jsonMembers(a[i]), jsonMembers(e[i]), `${what}: line ${i + 1} differs`);
  }
}

/** Assert byte equality with a readable diff of the first differing line. */
export function assertSameBytes(actual: Buffer, expected: Buffer, what: string): void {
  if (actual.equals(expected)) return;
  const a = actual.toString('latin1').split('\n');
  const e = expected.toString('latin1').split('\n');
  const i = a.findIndex((l, k) => l !== e[k]);
  assert.fail(`${what}: output differs at line ${i + 1} (ours ${a.length} lines, journalctl ${e.length}):\n ours:       ${JSON.stringify(a[i])}\n journalctl: ${JSON.stringify(e[i])}`);
}

/** Compare one query in one mode against journalctl. */
export async function compare(files: JournalFile[], paths: string[], mode: OutputMode, query: JournalQueryOptions, args: string[]): Promise<void> {
  const theirs = await journalctl([...paths.map((p) => `--file=${p}`), '-o', mode, ...args]);
  assert.equal(theirs.exitCode, 0, `journalctl ${args.join(' ')} failed: ${theirs.stderr}`);
  const mine = await ours(files, mode, query);
  const what = `-o ${mode} ${args.join(' ')}`;
  if (mode === 'json') assertSameJson(mine, theirs.stdout, what);
  else assertSameBytes(mine, theirs.stdout, what);
}
