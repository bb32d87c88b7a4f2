/**
 * Time as journalctl prints and parses it. Printing: strftime's "%b %d
 * %H:%M:%S" and "%Y-%m-%dT%H:%M:%S%z" in the C locale, in the process's
 * time zone (TZ) or in UTC. Parsing: the forms of systemd's parse_timestamp
 * that --since/--until take ("2024-01-02 03:04:05", "03:04", "today",
 * "yesterday", "@1700000000", "-1h", "2 days ago", a trailing " UTC").
 */
import { JournalQueryError } from './errors.ts';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export interface TimeParts {
  year: number;
  month: number; // 1..12
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** Seconds east of UTC. */
  offset: number;
}

/** Broken-down time of `seconds` since the epoch, local (TZ) or UTC. */
export function timeParts(seconds: number, utc: boolean): TimeParts {
  const d = new Date(seconds * 1000);
  if (utc) {
    return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), offset: 0 };
  }
  return { year: d.getFullYear(), month: d.getMonth() + 1, day: d.getDate(), hour: d.getHours(), minute: d.getMinutes(), second: d.getSeconds(), offset: -d.getTimezoneOffset() * 60 };
}

const p2 = (n: number) => String(n).padStart(2, '0');

/** strftime "%b %d %H:%M:%S". */
export function syslogTime(t: TimeParts): string {
  return `${MONTHS[t.month - 1]} ${p2(t.day)} ${p2(t.hour)}:${p2(t.minute)}:${p2(t.second)}`;
}

/** strftime "%z": +hhmm. */
export function zoneOffset(t: TimeParts): string {
  const sign = t.offset < 0 ? '-' : '+';
  const a = Math.abs(t.offset);
  return `${sign}${p2(Math.floor(a / 3600))}${p2(Math.floor((a % 3600) / 60))}`;
}

/** strftime "%Y-%m-%dT%H:%M:%S". */
export function isoTime(t: TimeParts): string {
  return `${String(t.year).padStart(4, '0')}-${p2(t.month)}-${p2(t.day)}T${p2(t.hour)}:${p2(t.minute)}:${p2(t.second)}`;
}

const UNITS: [RegExp, number][] = [
  [/^(us|usec|µs|μs)$/, 1],
  [/^(ms|msec)$/, 1e3],
  [/^(s|sec|second|seconds)$/, 1e6],
  [/^(m|min|minute|minutes)$/, 60e6],
  [/^(h|hr|hour|hours)$/, 3600e6],
  [/^(d|day|days)$/, 86400e6],
  [/^(w|week|weeks)$/, 7 * 86400e6],
  [/^(M|month|months)$/, 2629800e6],
  [/^(y|year|years)$/, 31557600e6],
];

/** parse_time_span: "1h 30min", "90s", "5" (seconds). µs. */
function parseSpan(text: string): number | undefined {
  const s = text.trim();
  if (s === '') return undefined;
  let total = 0;
  const re = /(\d+(?:\.\d+)?)\s*([A-Za-zµμ]*)\s*/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while ((m = re.exec(s))) {
    pos = re.lastIndex;
    const unit = m[2] === '' ? 1e6 : UNITS.find(([r]) => r.test(m![2]))?.[1];
    if (unit === undefined) return undefined;
    total += Number(m[1]) * unit;
    if (pos >= s.length) break;
  }
  return pos === s.length ? Math.round(total) : undefined;
}

/**
 * parse_timestamp, for --since/--until: µs since the epoch.
 * Absolute times are local (the process's TZ) unless they end in " UTC".
 */
export function parseTimestamp(text: string, nowUsec: bigint = BigInt(Date.now()) * 1000n): bigint {
  const bad = () => new JournalQueryError('EINVAL', `Failed to parse timestamp: ${text}`, { timestamp: text });
  let s = text.trim();
  let utc = false;
  if (/\sUTC$/.test(s)) {
    utc = true;
    s = s.slice(0, -4).trim();
  }
  if (s === 'now') return nowUsec;
  if (s.startsWith('@')) {
    const v = Number(s.slice(1));
    if (!Number.isFinite(v) || v < 0) throw bad();
    return BigInt(Math.round(v * 1e6));
  }
  if (s.startsWith('+') || s.startsWith('-')) {
    const span = parseSpan(s.slice(1));
    if (span === undefined) throw bad();
    return s[0] === '+' ? nowUsec + BigInt(span) : nowUsec - BigInt(span);
  }
  const rel = /^(.*)\s+(ago|left)$/.exec(s);
  if (rel) {
    const span = parseSpan(rel[1]);
    if (span === undefined) throw bad();
    return rel[2] === 'ago' ? nowUsec - BigInt(span) : nowUsec + BigInt(span);
  }
  const now = new Date(Number(nowUsec / 1000n));
  const make = (y: number, mo: number, d: number, h: number, mi: number, sec: number, usec: number) => {
    const ms = utc ? Date.UTC(y, mo - 1, d, h, mi, sec) : new Date(y, mo - 1, d, h, mi, sec).getTime();
    if (!Number.isFinite(ms)) throw bad();
    return BigInt(ms) * 1000n + BigInt(usec);
  };
  const today = (): [number, number, number] => (utc ? [now.getUTCFullYear(), now.getUTCMonth() + 1, now.getUTCDate()] : [now.getFullYear(), now.getMonth() + 1, now.getDate()]);
  if (s === 'today' || s === 'yesterday' || s === 'tomorrow') {
    const [y, mo, d] = today();
    return make(y, mo, d + (s === 'yesterday' ? -1 : s === 'tomorrow' ? 1 : 0), 0, 0, 0, 0);
  }
  // An optional weekday name in front is allowed and ignored (systemd checks it; we do not).
  s = s.replace(/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*\s+/i, '');
  const m = /^(?:(\d{2,4})-(\d{1,2})-(\d{1,2}))?(?:[ T]?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?$/.exec(s);
  if (!m || (!m[1] && !m[4])) throw bad();
  let [y, mo, d] = today();
  if (m[1]) {
    y = Number(m[1]);
    if (m[1].length === 2) y += y < 70 ? 2000 : 1900;
    mo = Number(m[2]);
    d = Number(m[3]);
  }
  const h = m[4] ? Number(m[4]) : 0;
  const mi = m[5] ? Number(m[5]) : 0;
  const sec = m[6] ? Number(m[6]) : 0;
  const usec = m[7] ? Number(m[7].padEnd(6, '0')) : 0;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) throw bad();
  return make(y, mo, d, h, mi, sec, usec);
}
