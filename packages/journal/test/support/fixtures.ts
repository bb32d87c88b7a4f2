/**
 * Real journal files for the tests, written by systemd's own writer:
 * entries in the Journal Export Format piped into
 * `systemd-journal-remote --output=FILE.journal -`, with the switches
 * Debian 12's systemd 252 has: --compress=no, SYSTEMD_JOURNAL_COMPACT=0|1,
 * SYSTEMD_JOURNAL_KEYED_HASH=0|1.
 *
 * That writer compresses with ZSTD only (SYSTEMD_JOURNAL_COMPRESS came in a
 * later systemd). XZ and LZ4 files are made from an uncompressed file by
 * re-encoding its large DATA payloads in place: xz(1) writes the .xz stream
 * (no check, as systemd does), LZ4 the raw block behind an le64 size; the
 * object size and the file's incompatible flag are set as systemd would.
 * journalctl (built with XZ and LZ4) is then the oracle that they decode.
 */
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { compressSync } from 'lz4-napi';

export const JOURNAL_REMOTE = '/lib/systemd/systemd-journal-remote';

export function haveJournalTools(): string | undefined {
  if (!existsSync(JOURNAL_REMOTE)) return `${JOURNAL_REMOTE} is missing (Debian package systemd-journal-remote)`;
  if (!existsSync('/usr/bin/journalctl') && !existsSync('/bin/journalctl')) return 'journalctl is missing (Debian package systemd)';
  return undefined;
}

export interface ExportEntry {
  realtime: bigint;
  monotonic: bigint;
  bootId: string;
  fields: [string, string | Buffer][];
}

/** One entry in the Journal Export Format (binary values as NAME\n le64 size, bytes). */
export function exportEntry(e: ExportEntry): Buffer {
  const parts: Buffer[] = [Buffer.from(`__REALTIME_TIMESTAMP=${e.realtime}\n__MONOTONIC_TIMESTAMP=${e.monotonic}\n_BOOT_ID=${e.bootId}\n`)];
  for (const [name, value] of e.fields) {
    const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    if (v.includes(0x0a) || typeof value !== 'string') {
      const size = Buffer.alloc(8);
      size.writeBigUInt64LE(BigInt(v.length));
      parts.push(Buffer.from(`${name}\n`), size, v, Buffer.from('\n'));
    } else parts.push(Buffer.from(`${name}=`), v, Buffer.from('\n'));
  }
  parts.push(Buffer.from('\n'));
  return Buffer.concat(parts);
}

export interface WriterEnv {
  compress?: 'XZ' | 'LZ4' | 'ZSTD' | '0';
  compact?: boolean;
  keyedHash?: boolean;
}

export function writerEnv(w: WriterEnv = {}): Record<string, string> {
  const env: Record<string, string> = { SYSTEMD_LOG_LEVEL: 'warning' };
  if (w.compress) env.SYSTEMD_JOURNAL_COMPRESS = w.compress;
  if (w.compact !== undefined) env.SYSTEMD_JOURNAL_COMPACT = w.compact ? '1' : '0';
  if (w.keyedHash !== undefined) env.SYSTEMD_JOURNAL_KEYED_HASH = w.keyedHash ? '1' : '0';
  return env;
}

/** Write `entries` into a new journal file at `path` with systemd's writer. */
export async function writeJournal(path: string, entries: Iterable<ExportEntry> | Buffer, w: WriterEnv = {}): Promise<void> {
  const input = Buffer.isBuffer(entries) ? entries : Buffer.concat([...entries].map(exportEntry));
  const compress = w.compress === undefined || w.compress === 'ZSTD' ? [] : ['--compress=no'];
  const r = await execa(JOURNAL_REMOTE, [`--output=${path}`, ...compress, '-'], { input, env: writerEnv(w), reject: false });
  if (r.exitCode !== 0) throw new Error(`systemd-journal-remote failed (${r.exitCode}): ${r.stderr}`);
  if (w.compress === 'XZ' || w.compress === 'LZ4') recompress(path, w.compress);
}

/** Re-encode every uncompressed DATA payload of 512 bytes or more (systemd's threshold) with XZ or LZ4. */
export function recompress(path: string, kind: 'XZ' | 'LZ4'): number {
  const buf = readFileSync(path);
  const headerSize = Number(buf.readBigUInt64LE(88));
  const tail = Number(buf.readBigUInt64LE(136));
  const compact = (buf.readUInt32LE(12) & 16) !== 0;
  const payloadAt = compact ? 72 : 64;
  let n = 0;
  for (let p = headerSize; p <= tail; ) {
    const type = buf[p];
    const size = Number(buf.readBigUInt64LE(p + 8));
    if (size === 0) break;
    if (type === 1 && buf[p + 1] === 0 && size - payloadAt >= 512) {
      const payload = Buffer.from(buf.subarray(p + payloadAt, p + size));
      let c: Buffer;
      if (kind === 'XZ') c = execFileSync('xz', ['--format=xz', '--check=none', '-c'], { input: payload });
      else {
        const block = compressSync(payload); // le32 size, then the block
        c = Buffer.alloc(8 + block.length - 4);
        c.writeBigUInt64LE(BigInt(payload.length), 0);
        block.copy(c, 8, 4);
      }
      if (c.length < payload.length) {
        c.copy(buf, p + payloadAt);
        buf[p + 1] = kind === 'XZ' ? 1 : 2;
        buf.writeBigUInt64LE(BigInt(payloadAt + c.length), p + 8);
        n++;
      }
    }
    p += Math.ceil(size / 8) * 8;
  }
  buf.writeUInt32LE(buf.readUInt32LE(12) | (kind === 'XZ' ? 1 : 2), 12);
  writeFileSync(path, buf);
  return n;
}

export const BOOT_A = '0123456789abcdef0123456789abcdef';
export const BOOT_B = 'fedcba9876543210fedcba9876543210';

/** A deterministic text of `n` bytes (compressible, printable). */
export function filler(n: number, seed = 0): string {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa'];
  let s = '';
  for (let i = 0; s.length < n; i++) s += `${words[(i * 7 + seed) % words.length]}${i % 13} `;
  return s.slice(0, n);
}

/**
 * A varied journal: units (their own messages, PID 1's about them, coredumps,
 * privileged daemons'), every priority, two boots, multi-line, tabs, colour
 * and other escape sequences, CRs, binary and non-UTF-8 values, repeated
 * fields, messages over the compression threshold (512 bytes) and over
 * journalctl's JSON and short-mode limits, entries without MESSAGE or
 * SYSLOG_IDENTIFIER, _SOURCE_REALTIME_TIMESTAMP, an entry with 120 fields.
 */
export function variedEntries(count = 240): ExportEntry[] {
  const out: ExportEntry[] = [];
  const base = 1700000000000000n;
  const units = ['foo.service', 'bar.service', 'user@1000.service', 'system-getty.slice'];
  for (let i = 0; i < count; i++) {
    const boot = i < count / 2 ? BOOT_A : BOOT_B;
    const f: [string, string | Buffer][] = [
      ['_HOSTNAME', i % 17 === 0 ? 'other-host' : 'guest01'],
      ['PRIORITY', String(i % 8)],
    ];
    if (i % 11 !== 3) f.push(['SYSLOG_IDENTIFIER', ['sshd', 'kernel', 'systemd', 'cron', 'app'][i % 5]]);
    f.push(['_COMM', ['sshd', 'kworker', 'systemd', 'cron', 'app.bin'][i % 5]]);
    if (i % 4 !== 0) f.push(['_PID', String(100 + (i % 9))]);
    else f.push(['SYSLOG_PID', String(900 + i)]);
    const unit = units[i % units.length];
    switch (i % 6) {
      case 0: f.push(['_SYSTEMD_UNIT', unit], ['_UID', '0']); break;
      case 1: f.push(['_PID', '1'], ['UNIT', unit]); break;
      case 2: f.push(['_UID', '0'], ['OBJECT_SYSTEMD_UNIT', unit]); break;
      case 3: f.push(['MESSAGE_ID', 'fc2e22bc6ee647b6b90729ab34a250b1'], ['_UID', '0'], ['COREDUMP_UNIT', unit]); break;
      case 4: f.push(['_SYSTEMD_SLICE', 'system-getty.slice'], ['_SYSTEMD_UNIT', 'getty@tty1.service']); break;
      default: f.push(['_UID', '1000']);
    }
    let message: string | Buffer;
    switch (i % 20) {
      case 0: message = `line one ${i}\nline two\n\tindented\nlast`; break;
      case 1: message = `tab\there and \x1b[31mred\x1b[0m colour ${i}`; break;
      case 2: message = `carriage return\r ${i}\r`; break;
      case 3: message = filler(700, i); break; // over the compression threshold
      case 4: message = filler(5000, i); break; // json null, short ellipsis rules at full width
      case 5: message = Buffer.from([0x62, 0x69, 0x6e, 0x00, 0xff, 0x1b, 0x0a, 0x41]); break; // binary
      case 6: message = Buffer.concat([Buffer.from('latin1 '), Buffer.from([0xe9, 0xe8])]); break; // not UTF-8
      case 7: message = `unicode ✓ ünïcödé 日本 ${i}`; break;
      case 8: message = ''; break;
      case 9: message = `quote " backslash \\ and bell \x07 ${i}`; break;
      case 10: message = `escape \x1b]8;;http://x\x07link\x1b]8;;\x07 and \x1b[2J clear ${i}`; break;
      case 11: message = `trailing newline ${i}\n`; break;
      default: message = `message number ${i} from ${unit}`;
    }
    if (i % 20 !== 13) f.push(['MESSAGE', message]);
    if (i % 7 === 0) f.push(['FOO', 'first'], ['FOO', `second ${i}`]);
    if (i % 9 === 0) f.push(['_SOURCE_REALTIME_TIMESTAMP', String(base + BigInt(i) * 1000000n - 500n)]);
    if (i % 10 === 5) f.push(['BLOB', Buffer.from([1, 2, 3, 0, 250])]);
    if (i === 42) for (let k = 0; k < 120; k++) f.push([`FIELD_${k}`, `value ${k}`]);
    out.push({ realtime: base + BigInt(i) * 1000000n + BigInt(i % 3), monotonic: BigInt(1000 + i * 100), bootId: boot, fields: f });
  }
  return out;
}

/** `n` plain entries, like a busy machine's (unique messages, a few services), for the big file and the benchmark. */
export function* bulkEntries(n: number, start = 0): Generator<ExportEntry> {
  const base = 1710000000000000n;
  for (let i = start; i < start + n; i++) {
    yield {
      realtime: base + BigInt(i) * 1000n,
      monotonic: BigInt(5000000 + i * 1000),
      bootId: BOOT_A,
      fields: [
        ['_HOSTNAME', 'bulk-host'],
        ['SYSLOG_IDENTIFIER', ['nginx', 'postgres', 'cron'][i % 3]],
        ['_PID', String(2000 + (i % 50))],
        ['PRIORITY', String(3 + (i % 4))],
        ['_SYSTEMD_UNIT', ['nginx.service', 'postgresql.service', 'cron.service'][i % 3]],
        ['_TRANSPORT', 'journal'],
        ['MESSAGE', i % 500 === 0 ? filler(800, i) : `request ${i} handled in ${i % 97} ms path=/api/v1/item/${i * 7}`],
      ],
    };
  }
}
