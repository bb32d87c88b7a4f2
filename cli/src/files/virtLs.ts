/**
 * virt-ls's output formats, byte for byte (guestfs-tools ls/ls.c):
 *  - plain: the names in a directory, sorted, one per line;
 *  - -R: every path below the directory, relative, sorted;
 *  - -l: what `ls -la` prints in libguestfs's appliance (UTC, numeric owners);
 *  - -lR and its options: one line per entry, `TYPE PERMS SIZE [UID GID]
 *    [ATIME MTIME CTIME] [DEV INO NLINK RDEV BLOCKS] [CHECKSUM] PATH [-> TARGET]`,
 *    or the same fields as CSV.
 */
import type { FileStat } from '@guestlens/inspect';
import { csvField } from '../output/csv.ts';
import { humanSize } from '../output/humanSize.ts';
import { displayName } from '../output/names.ts';
import { modeString, virtLsType } from './modes.ts';

export interface LongOptions {
  csv: boolean;
  human: boolean;
  uids: boolean;
  /** undefined: no time columns; else how times print. */
  times?: 'date' | 'time-t' | 'seconds' | 'days';
  extraStats: boolean;
  /** Seconds since the epoch "now", for relative times. */
  now: number;
}

export interface LongEntry {
  rawPath: Buffer;
  stat: FileStat;
  target?: string;
  checksum?: string;
  /** st_dev as major:minor of the guest device holding it. */
  dev: { major: number; minor: number };
  /** Whether a checksum column is printed at all. */
  checksumColumn: boolean;
}

function pad(n: number | string, width: number): string {
  return String(n).padStart(width);
}

/** strftime "%F %T" in local time (the TZ of the process), as virt-ls prints times. */
function localDate(sec: number): string {
  const d = new Date(sec * 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** One -lR line (with its newline). */
export function longLine(e: LongEntry, o: LongOptions): string {
  const f: string[] = [];
  /** Fields virt-ls prints with printf, never through its CSV quoting (the padded owner columns). */
  const unquoted = new Set<number>();
  const st = e.stat;
  f.push(virtLsType(st.type));
  f.push((st.mode & 0o7777).toString(8).padStart(4, '0'));
  f.push(o.human ? (o.csv ? humanSize(st.size) : pad(humanSize(st.size), 10)) : o.csv ? String(st.size) : pad(st.size, 10));
  // virt-ls pads owners to 4 columns even in CSV; scripts depend on it.
  if (o.uids) {
    unquoted.add(f.length).add(f.length + 1);
    f.push(pad(st.uid, 4), pad(st.gid, 4));
  }
  if (o.times) for (const t of [st.atime, st.mtime, st.ctime]) f.push(time(t.sec, o));
  if (o.extraStats) {
    f.push(`${e.dev.major}:${e.dev.minor}`, String(st.ino), String(st.nlink), `${st.rdev?.major ?? 0}:${st.rdev?.minor ?? 0}`, String(st.blocks));
  }
  if (e.checksumColumn && (o.csv || e.checksum !== undefined)) f.push(e.checksum ?? '');
  f.push(displayName(e.rawPath));
  if (o.csv) {
    if (e.target !== undefined) f.push(displayName(e.target));
    return `${f.map((x, i) => (unquoted.has(i) ? x : csvField(x))).join(',')}\n`;
  }
  return `${f.join(' ')}${e.target !== undefined ? ` -> ${displayName(e.target)}` : ''}\n`;
}

function time(sec: number, o: LongOptions): string {
  switch (o.times) {
    case 'time-t':
      return o.csv ? String(sec) : pad(sec, 10);
    case 'seconds':
      return o.csv ? String(o.now - sec) : pad(o.now - sec, 8);
    case 'days':
      return o.csv ? String(Math.floor((o.now - sec) / 86400)) : pad(Math.floor((o.now - sec) / 86400), 3);
    default:
      return localDate(sec);
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const SIX_MONTHS = (365.2425 * 24 * 3600) / 2;

export interface LlEntry {
  rawName: Buffer;
  stat: FileStat;
  target?: string;
}

/** `ls -la` of one directory as libguestfs's appliance prints it (C locale, UTC, numeric owners). */
export function lsLa(entries: LlEntry[], now: number): string {
  const total = Math.ceil(entries.reduce((n, e) => n + e.stat.blocks, 0) / 2);
  const sizeOf = (e: LlEntry) => (e.stat.type === 'chardev' || e.stat.type === 'blockdev' ? `${e.stat.rdev?.major ?? 0}, ${e.stat.rdev?.minor ?? 0}` : String(e.stat.size));
  // Column widths by a loop: Math.max(...list) overflows the stack for a directory of a million entries.
  const w = { nlink: 0, uid: 0, gid: 0, size: 0 };
  for (const e of entries) {
    w.nlink = Math.max(w.nlink, String(e.stat.nlink).length);
    w.uid = Math.max(w.uid, String(e.stat.uid).length);
    w.gid = Math.max(w.gid, String(e.stat.gid).length);
    w.size = Math.max(w.size, sizeOf(e).length);
  }
  const lines = [`total ${total}`];
  for (const e of entries) {
    const st = e.stat;
    const d = new Date(st.mtime.sec * 1000);
    const recent = st.mtime.sec <= now && now - st.mtime.sec < SIX_MONTHS;
    const date = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ${recent ? `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}` : String(d.getUTCFullYear()).padStart(5)}`;
    lines.push(
      `${modeString(st.type, st.mode)} ${pad(st.nlink, w.nlink)} ${String(st.uid).padEnd(w.uid)} ${String(st.gid).padEnd(w.gid)} ${pad(sizeOf(e), w.size)} ${date} ${displayName(e.rawName)}${e.target !== undefined ? ` -> ${displayName(e.target)}` : ''}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
