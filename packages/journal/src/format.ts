/**
 * journalctl's output modes, byte for byte as systemd 252's logs-show.c
 * writes them when stdout is not a terminal (full width, no colours, no
 * pager):
 *
 *  - short, short-iso, short-iso-precise, short-precise, short-monotonic,
 *    short-unix: "TIME HOST IDENT[PID]: MESSAGE", the time from
 *    _SOURCE_REALTIME_TIMESTAMP when valid, tabs expanded and colour
 *    sequences stripped, continuation lines indented under the message,
 *    a message that is not printable as "[SIZE blob data]";
 *  - json: one object per line; __CURSOR, __REALTIME_TIMESTAMP,
 *    __MONOTONIC_TIMESTAMP, _BOOT_ID, then the fields; a field that repeats
 *    becomes an array; a value that is not printable UTF-8 an array of byte
 *    values; a field of 4096 bytes or more null. (journalctl orders the keys
 *    by a per-process random hash; ours come in that fixed order, then the
 *    entry's own field order.)
 *  - export: the Journal Export Format; a value that is not printable
 *    without newlines is written binary (name, LF, le64 size, bytes);
 *  - cat: the MESSAGE value alone, raw.
 *
 * `escapeControl` (not journalctl's) turns every byte a hostile guest could
 * use to drive a terminal into \xNN in the text modes; short output is
 * already free of them (journalctl prints such messages as blob data), cat
 * is raw without it. export is a data format and is never altered.
 */
import { JournalCorruptError } from './errors.ts';
import type { JournalEntry } from './journalReader.ts';
import { isoTime, syslogTime, timeParts, zoneOffset } from './time.ts';
import { escapeControl as escapeBytes, isPrintable } from './utf8.ts';

export type OutputMode = 'short' | 'short-iso' | 'short-iso-precise' | 'short-precise' | 'short-monotonic' | 'short-unix' | 'json' | 'export' | 'cat';
export const OUTPUT_MODES: OutputMode[] = ['short', 'short-iso', 'short-iso-precise', 'short-precise', 'short-monotonic', 'short-unix', 'json', 'export', 'cat'];

export interface FormatOptions {
  /** Print times in UTC (journalctl --utc); otherwise in the process's time zone (TZ). */
  utc?: boolean;
  /** Escape control characters for a terminal (see above). */
  escapeControl?: boolean;
  /** journalctl --all: print long and unprintable fields as they are. */
  all?: boolean;
}

/** What a formatter needs of an entry: its header values and its "FIELD=value" payloads. */
export interface EntryRecord {
  cursor: string;
  realtime: bigint;
  monotonic: bigint;
  bootId: string;
  fields: Buffer[];
}

export async function entryRecord(e: JournalEntry): Promise<EntryRecord> {
  return { cursor: e.cursor, realtime: e.realtime, monotonic: e.monotonic, bootId: e.bootId, fields: await e.fields() };
}

const PRINT_CHAR_THRESHOLD = 300;
const JSON_THRESHOLD = 4096;
const TIMESTAMP_LIMIT = 1n << 55n;

/** The bytes journalctl prints for one entry in `mode` (possibly empty: short skips entries without MESSAGE). */
export function formatEntry(mode: OutputMode, e: EntryRecord, options: FormatOptions = {}): Buffer {
  switch (mode) {
    case 'json':
      return formatJson(e, options);
    case 'export':
      return formatExport(e);
    case 'cat':
      return formatCat(e, options);
    default:
      return formatShort(mode, e, options);
  }
}

/** Whether journalctl runs "quiet" in this mode: no "-- Boot --" separators, no "-- No entries --". */
export function isQuietMode(mode: OutputMode): boolean {
  return mode === 'json' || mode === 'export' || mode === 'cat';
}

/** journalctl's line between entries of different boots (short modes). */
export function bootSeparator(bootId: string): string {
  return `-- Boot ${bootId} --\n`;
}

/** What journalctl prints when a short-mode query shows nothing. */
export const NO_ENTRIES = '-- No entries --\n';

/**
 * A formatter with journalctl's state across entries: the boot separator
 * before the first entry of a new boot (short modes).
 */
export class JournalPrinter {
  private previousBoot: string | undefined;
  shown = 0;

  constructor(
    readonly mode: OutputMode,
    readonly options: FormatOptions = {},
  ) {}

  async print(e: JournalEntry): Promise<Buffer> {
    const record = await entryRecord(e);
    return this.printRecord(record);
  }

  printRecord(record: EntryRecord): Buffer {
    const body = formatEntry(this.mode, record, this.options);
    let out = body;
    if (!isQuietMode(this.mode)) {
      if (this.previousBoot !== undefined && this.previousBoot !== record.bootId) out = Buffer.concat([Buffer.from(bootSeparator(record.bootId), 'latin1'), body]);
      this.previousBoot = record.bootId;
    }
    this.shown++;
    return out;
  }

  /** The closing line journalctl prints when nothing was shown (empty in quiet modes). */
  finish(): string {
    return this.shown === 0 && !isQuietMode(this.mode) ? NO_ENTRIES : '';
  }
}

// --- short ----------------------------------------------------------------------------------

const SHORT_FIELDS = ['_PID=', '_COMM=', 'MESSAGE=', 'PRIORITY=', '_TRANSPORT=', '_HOSTNAME=', 'SYSLOG_PID=', 'SYSLOG_IDENTIFIER=', 'CONFIG_FILE=', '_SYSTEMD_UNIT=', '_SYSTEMD_USER_UNIT=', 'DOCUMENTATION='] as const;
const SHORT_PREFIXES = SHORT_FIELDS.map((f) => Buffer.from(f, 'latin1'));

function startsWith(b: Buffer, prefix: Buffer): boolean {
  return b.length >= prefix.length && b.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

/** Last value of each of the short-mode fields (logs-show's parse_fieldv: a later value replaces an earlier one). */
function shortFields(fields: Buffer[]): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const f of fields) {
    for (let i = 0; i < SHORT_PREFIXES.length; i++) {
      if (startsWith(f, SHORT_PREFIXES[i])) {
        out.set(SHORT_FIELDS[i], f.subarray(SHORT_PREFIXES[i].length));
        break;
      }
    }
  }
  return out;
}

/** safe_atou64 (strtoull with base prefixes, surrounding rules of systemd). */
export function parseU64(text: string): bigint | undefined {
  let s = text.replace(/^[ \t\n\r]+/, '');
  let base = 0;
  if (/^0[bB]/.test(s)) {
    base = 2;
    s = s.slice(2);
  } else if (/^0[oO]/.test(s)) {
    base = 8;
    s = s.slice(2);
  }
  // strtoull: leading isspace, an optional sign, a base prefix when base is 0.
  const m = /^[ \t\n\v\f\r]*([+-]?)(.*)$/s.exec(s)!;
  const negative = m[1] === '-';
  let digits = m[2];
  if (base === 0) {
    if (/^0[xX][0-9a-fA-F]/.test(digits)) {
      base = 16;
      digits = digits.slice(2);
    } else if (digits.startsWith('0')) base = 8;
    else base = 10;
  }
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz'.slice(0, base);
  if (digits === '' || ![...digits.toLowerCase()].every((c) => alphabet.includes(c))) return undefined;
  let v = 0n;
  for (const c of digits.toLowerCase()) v = v * BigInt(base) + BigInt(alphabet.indexOf(c));
  if (v > 0xffffffffffffffffn) return undefined; // ERANGE
  if (negative) {
    if (v !== 0n) return undefined; // ERANGE for "-N"
  }
  return v;
}

/** get_dual_timestamp: _SOURCE_REALTIME/_MONOTONIC_TIMESTAMP when they parse and are valid, else the entry's. */
function displayTimestamps(e: EntryRecord): { realtime: bigint; monotonic: bigint } {
  const rtPrefix = Buffer.from('_SOURCE_REALTIME_TIMESTAMP=', 'latin1');
  const monoPrefix = Buffer.from('_SOURCE_MONOTONIC_TIMESTAMP=', 'latin1');
  let rt: Buffer | undefined;
  let mono: Buffer | undefined;
  for (const f of e.fields) {
    if (startsWith(f, rtPrefix)) rt = f.subarray(rtPrefix.length);
    else if (startsWith(f, monoPrefix)) mono = f.subarray(monoPrefix.length);
    if (rt && mono) break;
  }
  const cstr = (b: Buffer) => {
    const nul = b.indexOf(0);
    return (nul >= 0 ? b.subarray(0, nul) : b).toString('latin1');
  };
  let realtime = rt ? parseU64(cstr(rt)) : undefined;
  if (realtime === undefined || realtime === 0n || realtime >= TIMESTAMP_LIMIT) realtime = e.realtime;
  let monotonic = mono ? parseU64(cstr(mono)) : undefined;
  if (monotonic === undefined || monotonic >= TIMESTAMP_LIMIT) monotonic = e.monotonic;
  return { realtime, monotonic };
}

/** strip_tab_ansi: TAB → 8 spaces, ESC[…m and ESC]…BEL removed, CRs before a newline or at the end dropped. */
export function stripTabAnsi(input: Buffer): Buffer {
  if (!input.includes(0x09) && !input.includes(0x1b) && !input.includes(0x0d)) return input;
  const out: number[] = [];
  let state: 'other' | 'escape' | 'csi' | 'cso' = 'other';
  let begin = 0;
  let carriageReturns = 0;
  for (let i = 0; i <= input.length; i++) {
    const eot = i >= input.length;
    const c = eot ? 0 : input[i];
    switch (state) {
      case 'other':
        if (eot) break;
        if (c === 0x0d) {
          carriageReturns++;
          break;
        } else if (c === 0x0a) carriageReturns = 0;
        for (; carriageReturns > 0; carriageReturns--) out.push(0x0d);
        if (c === 0x1b) state = 'escape';
        else if (c === 0x09) out.push(32, 32, 32, 32, 32, 32, 32, 32);
        else out.push(c);
        break;
      case 'escape':
        if (eot) {
          out.push(0x1b);
          break;
        } else if (c === 0x5b) {
          state = 'csi';
          begin = i + 1;
        } else if (c === 0x5d) {
          state = 'cso';
          begin = i + 1;
        } else {
          out.push(0x1b, c);
          state = 'other';
        }
        break;
      case 'csi':
        if (eot || !'01234567890;m'.includes(String.fromCharCode(c)) || c === 0) {
          out.push(0x1b, 0x5b);
          state = 'other';
          i = begin - 1;
        } else if (c === 0x6d) state = 'other';
        break;
      case 'cso':
        if (eot || (c !== 0x07 && c < 32) || c > 126) {
          out.push(0x1b, 0x5d);
          state = 'other';
          i = begin - 1;
        } else if (c === 0x07) state = 'other';
        break;
    }
  }
  return Buffer.from(out);
}

/** FORMAT_BYTES: IEC units with one decimal, a trailing B below 1K ("42B", "1.5K"). */
export function formatBytes(t: number): string {
  const units: [string, number][] = [
    ['E', 1024 ** 6],
    ['P', 1024 ** 5],
    ['T', 1024 ** 4],
    ['G', 1024 ** 3],
    ['M', 1024 ** 2],
    ['K', 1024],
  ];
  for (let i = 0; i < units.length; i++) {
    const [suffix, factor] = units[i];
    if (t >= factor) {
      const decimal = i !== units.length - 1 ? Math.floor((Math.floor(t / units[i + 1][1]) * 10) / 1024) % 10 : Math.floor((t * 10) / factor) % 10;
      return `${Math.floor(t / factor)}.${decimal}${suffix}`;
    }
  }
  return `${t}B`;
}

function shallPrint(v: Buffer, all: boolean): boolean {
  return all || (v.length < PRINT_CHAR_THRESHOLD && isPrintable(v));
}

function shortTimestamp(mode: OutputMode, realtime: bigint, monotonic: bigint, utc: boolean): string {
  if (mode === 'short-monotonic') {
    return `[${String(monotonic / 1000000n).padStart(5, ' ')}.${String(monotonic % 1000000n).padStart(6, '0')}]`;
  }
  const seconds = Number(realtime / 1000000n);
  const usec = String(realtime % 1000000n).padStart(6, '0');
  if (mode === 'short-unix') return `${String(seconds).padStart(10, ' ')}.${usec}`;
  const t = timeParts(seconds, utc);
  switch (mode) {
    case 'short-iso':
      return `${isoTime(t)}${zoneOffset(t)}`;
    case 'short-iso-precise':
      return `${isoTime(t)}.${usec}${zoneOffset(t)}`;
    case 'short-precise':
      return `${syslogTime(t)}.${usec}`;
    default:
      return syslogTime(t);
  }
}

function formatShort(mode: OutputMode, e: EntryRecord, options: FormatOptions): Buffer {
  const all = options.all ?? false;
  const f = shortFields(e.fields);
  let message = f.get('MESSAGE=');
  if (!message) return Buffer.alloc(0);
  if (!all) message = stripTabAnsi(message);
  const ts = displayTimestamps(e);
  const parts: Buffer[] = [];
  const head = shortTimestamp(mode, ts.realtime, ts.monotonic, options.utc ?? false);
  parts.push(Buffer.from(head, 'latin1'));
  let n = head.length;
  const hostname = f.get('_HOSTNAME=');
  if (hostname && shallPrint(hostname, all)) {
    parts.push(Buffer.from(' '), hostname);
    n += hostname.length + 1;
  }
  const identifier = f.get('SYSLOG_IDENTIFIER=');
  const comm = f.get('_COMM=');
  if (identifier && shallPrint(identifier, all)) {
    parts.push(Buffer.from(' '), identifier);
    n += identifier.length + 1;
  } else if (comm && shallPrint(comm, all)) {
    parts.push(Buffer.from(' '), comm);
    n += comm.length + 1;
  } else parts.push(Buffer.from(' unknown')); // journalctl does not count it in the indent either
  const pid = f.get('_PID=');
  const fakePid = f.get('SYSLOG_PID=');
  if (pid && shallPrint(pid, all)) {
    parts.push(Buffer.from('['), pid, Buffer.from(']'));
    n += pid.length + 2;
  } else if (fakePid && shallPrint(fakePid, all)) {
    parts.push(Buffer.from('['), fakePid, Buffer.from(']'));
    n += fakePid.length + 2;
  }
  parts.push(Buffer.from(': '));
  if (!all && !isPrintable(message)) {
    parts.push(Buffer.from(`[${formatBytes(message.length)} blob data]\n`, 'latin1'));
  } else {
    const body = options.escapeControl ? escapeBytes(message) : message;
    parts.push(multiline(body, n + 2));
  }
  return Buffer.concat(parts);
}

/** print_multiline at full width: every line of the message, continuation lines indented by `prefix`. */
function multiline(message: Buffer, prefix: number): Buffer {
  if (message.length === 0) return Buffer.from('\n');
  if (!message.includes(0x0a)) return Buffer.concat([message, Buffer.from('\n')]);
  const indent = Buffer.alloc(prefix, 0x20);
  const out: Buffer[] = [];
  for (let pos = 0, line = 0; pos < message.length; line++) {
    let end = message.indexOf(0x0a, pos);
    if (end < 0) end = message.length;
    if (line > 0) out.push(indent);
    out.push(message.subarray(pos, end), Buffer.from('\n'));
    pos = end + 1;
  }
  return Buffer.concat(out);
}

// --- json -----------------------------------------------------------------------------------

/** journal_field_valid with protected fields allowed: 1..64 of [A-Z0-9_], not starting with a digit. */
function fieldNameValid(b: Buffer, end: number): boolean {
  if (end <= 0 || end > 64) return false;
  if (b[0] >= 0x30 && b[0] <= 0x39) return false;
  for (let i = 0; i < end; i++) {
    const c = b[i];
    if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f)) return false;
  }
  return true;
}

function invalidField(e: EntryRecord): JournalCorruptError {
  return new JournalCorruptError('journal', `entry ${e.cursor} has a field with an invalid name; journalctl stops here with "Invalid field."`, undefined, false, { cursor: e.cursor });
}

/** json_format_string on printable UTF-8 bytes: escapes ", \, and the control characters that remain (TAB, LF). */
function jsonString(v: Buffer, start = 0, end = v.length): string {
  let s = '"';
  let run = start;
  for (let i = start; i < end; i++) {
    const c = v[i];
    let esc: string | undefined;
    if (c === 0x22) esc = '\\"';
    else if (c === 0x5c) esc = '\\\\';
    else if (c < 0x20) esc = c === 0x0a ? '\\n' : c === 0x09 ? '\\t' : c === 0x0d ? '\\r' : c === 0x08 ? '\\b' : c === 0x0c ? '\\f' : `\\u${c.toString(16).padStart(4, '0')}`;
    if (esc) {
      s += v.toString('utf8', run, i) + esc;
      run = i + 1;
    }
  }
  return `${s}${v.toString('utf8', run, end)}"`;
}

function jsonValue(nameLength: number, v: Buffer, start: number, end: number, all: boolean): string {
  const size = end - start;
  if (!all && nameLength + 1 + size >= JSON_THRESHOLD) return 'null';
  if (isPrintable(v, start, end)) return jsonString(v, start, end);
  let s = '[';
  for (let i = start; i < end; i++) s += i === start ? String(v[i]) : `,${v[i]}`;
  return `${s}]`;
}

function formatJson(e: EntryRecord, options: FormatOptions): Buffer {
  const all = options.all ?? false;
  const values = new Map<string, string[]>();
  const put = (name: string, value: string) => {
    const list = values.get(name);
    if (list) list.push(value);
    else values.set(name, [value]);
  };
  const header = (name: string, text: string) => put(name, jsonValue(name.length, Buffer.from(text, 'latin1'), 0, text.length, all));
  header('__CURSOR', e.cursor);
  header('__REALTIME_TIMESTAMP', e.realtime.toString());
  header('__MONOTONIC_TIMESTAMP', e.monotonic.toString());
  header('_BOOT_ID', e.bootId);
  for (const f of e.fields) {
    if (f.length >= 9 && f.toString('latin1', 0, 9) === '_BOOT_ID=') continue;
    const eq = f.subarray(0, Math.min(f.length, JSON_THRESHOLD)).indexOf(0x3d);
    if (eq < 0) continue;
    if (!fieldNameValid(f, eq)) throw invalidField(e);
    put(f.toString('latin1', 0, eq), jsonValue(eq, f, eq + 1, f.length, all));
  }
  let s = '{';
  let first = true;
  for (const [name, list] of values) {
    s += `${first ? '' : ','}"${name}":${list.length === 1 ? list[0] : `[${list.join(',')}]`}`;
    first = false;
  }
  return Buffer.from(`${s}}\n`, 'utf8');
}

// --- export ---------------------------------------------------------------------------------

function formatExport(e: EntryRecord): Buffer {
  const parts: Buffer[] = [
    Buffer.from(`__CURSOR=${e.cursor}\n__REALTIME_TIMESTAMP=${e.realtime}\n__MONOTONIC_TIMESTAMP=${e.monotonic}\n_BOOT_ID=${e.bootId}\n`, 'latin1'),
  ];
  const nl = Buffer.from('\n');
  for (const f of e.fields) {
    if (f.length >= 9 && f.toString('latin1', 0, 9) === '_BOOT_ID=') continue;
    const eq = f.indexOf(0x3d);
    if (eq < 0 || !fieldNameValid(f, eq)) throw invalidField(e);
    if (isPrintable(f, 0, f.length, false)) parts.push(f, nl);
    else {
      const size = Buffer.alloc(8);
      size.writeBigUInt64LE(BigInt(f.length - eq - 1));
      parts.push(f.subarray(0, eq), nl, size, f.subarray(eq + 1), nl);
    }
  }
  parts.push(nl);
  return Buffer.concat(parts);
}

// --- cat ------------------------------------------------------------------------------------

const MESSAGE = Buffer.from('MESSAGE=', 'latin1');

function formatCat(e: EntryRecord, options: FormatOptions): Buffer {
  // sd_journal_get_data: the first MESSAGE= item.
  const m = e.fields.find((f) => startsWith(f, MESSAGE));
  if (!m) return Buffer.alloc(0);
  const value = m.subarray(MESSAGE.length);
  return Buffer.concat([options.escapeControl ? escapeBytes(value) : value, Buffer.from('\n')]);
}
