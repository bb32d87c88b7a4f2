/**
 * journalctl's filters and its reading loop, as a library: which entries
 * `journalctl --file=... [-n N] [--since] [--until] [-u UNIT] [-p PRIO]
 * [-t IDENT] [-b [BOOT]] [--cursor|--after-cursor] [FIELD=VALUE...]` shows,
 * in the order it shows them.
 *
 * Filters are added in journalctl's order (boot, units, identifiers,
 * priorities, then FIELD=VALUE terms), each a conjunction term.
 *
 * A query is a stateful iterator: `entries()` yields what journalctl prints
 * now; after the files were refreshed (`refresh()`, or `setFiles()` after a
 * rotation) the next `entries()` yields only what was appended since, every
 * entry once. In follow mode the -n limit applies to the first round only,
 * as with journalctl -f.
 */
import { JournalQueryError } from './errors.ts';
import type { JournalFile } from './journalFile.ts';
import { JournalReader, type JournalEntry } from './journalReader.ts';
import { Matches } from './matches.ts';
import { resolveBoot, type BootSpec } from './boots.ts';
import { SYSTEM_UNIT_FIELDS, addMatchesForUnit, fnmatch, isGlob, mangleUnitName } from './units.ts';

export interface JournalQueryOptions {
  /** -n N: the last N entries (with since or a cursor: the first N from there). Undefined: all. */
  lines?: number;
  /** --since, --until: realtime in µs (see parseTimestamp for journalctl's strings). */
  since?: bigint;
  until?: bigint;
  /** -b: a boot (parseBootDescriptor); undefined: every boot. */
  boot?: BootSpec;
  /** -u UNIT: system units, plain names (foo → foo.service) or globs. */
  units?: string[];
  /** -t IDENTIFIER */
  identifiers?: string[];
  /** -p: a level, a range "err..warning", or 0..7; or a bit mask of priorities. */
  priority?: string | number;
  /** FIELD=VALUE terms, "+" between them for OR (journalctl's positional arguments). */
  matches?: string[];
  /** --cursor: start at this entry. */
  cursor?: string;
  /** --after-cursor: start after this entry. */
  afterCursor?: string;
  /** -f: keep going across refreshes (the -n limit applies to the first round only). */
  follow?: boolean;
}

const LEVELS = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'];

function logLevel(s: string): number {
  const i = LEVELS.indexOf(s);
  if (i >= 0) return i;
  if (/^\d+$/.test(s) && Number(s) <= 7) return Number(s);
  throw new JournalQueryError('EINVAL', `Unknown log level ${s}`, { priority: s });
}

/** journalctl -p's argument as a bit mask of the priorities it selects. */
export function parsePriorities(p: string | number): number {
  if (typeof p === 'number') return p & 0xff;
  const dots = p.indexOf('..');
  if (dots >= 0) {
    const from = logLevel(p.slice(0, dots));
    const to = logLevel(p.slice(dots + 2));
    let mask = 0;
    for (let i = Math.min(from, to); i <= Math.max(from, to); i++) mask |= 1 << i;
    return mask;
  }
  const level = logLevel(p);
  let mask = 0;
  for (let i = 0; i <= level; i++) mask |= 1 << i;
  return mask;
}

/** Every value of a field across files (sd_journal_query_unique), for unit globs. */
async function uniqueValues(files: JournalFile[], field: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const f of files) {
    for await (const payload of f.fieldValues(field)) {
      const eq = payload.indexOf(0x3d);
      out.add(payload.toString('utf8', eq + 1));
      if (out.size > 100_000) return out;
    }
  }
  return out;
}

/** The matches journalctl builds from these options. */
export async function buildMatches(files: JournalFile[], o: JournalQueryOptions): Promise<Matches> {
  const m = new Matches();
  if (o.boot) {
    const id = await resolveBoot(files, o.boot);
    m.add(`_BOOT_ID=${id}`);
    m.addConjunction();
  }
  if (o.units?.length) {
    let count = 0;
    const patterns: string[] = [];
    for (const u of o.units) {
      const name = mangleUnitName(u);
      if (isGlob(name)) patterns.push(name);
      else {
        addMatchesForUnit(m, name);
        m.addDisjunction();
        count++;
      }
    }
    if (patterns.length) {
      const found = new Set<string>();
      for (const field of SYSTEM_UNIT_FIELDS) {
        for (const v of await uniqueValues(files, field)) if (patterns.some((p) => fnmatch(p, v))) found.add(v);
      }
      for (const u of found) {
        addMatchesForUnit(m, u);
        m.addDisjunction();
        count++;
      }
    }
    if (count === 0) throw new JournalQueryError('ENODATA', 'Failed to add filter for units: No data available', { units: o.units });
    m.addConjunction();
  }
  if (o.identifiers?.length) {
    for (const t of o.identifiers) {
      m.add(`SYSLOG_IDENTIFIER=${t}`);
      m.addDisjunction();
    }
    m.addConjunction();
  }
  if (o.priority !== undefined) {
    const mask = parsePriorities(o.priority);
    if (mask !== 0xff) {
      for (let i = 0; i <= 7; i++) if (mask & (1 << i)) m.add(`PRIORITY=${i}`);
      m.addConjunction();
    }
  }
  if (o.matches?.length) {
    let haveTerm = false;
    for (const t of o.matches) {
      if (t === '+') {
        if (!haveTerm) break;
        m.addDisjunction();
        haveTerm = false;
      } else if (t.startsWith('/')) {
        throw new JournalQueryError('EINVAL', `Failed to add match '${t}': a path match needs the guest's file system; give FIELD=VALUE`, { match: t });
      } else {
        m.add(t);
        haveTerm = true;
      }
    }
    if (!haveTerm) throw new JournalQueryError('EINVAL', '"+" can only be used between terms');
  }
  return m;
}

export class JournalQuery {
  private started = false;
  private firstRound = true;
  private shown = 0;
  private needSeek = false;
  private pending: JournalEntry | undefined;
  /** Cursors of the last entry yielded and of the one before it (what unread() goes back to). */
  private lastYielded: string | undefined;
  private beforeLast: string | undefined;

  private constructor(
    readonly reader: JournalReader,
    readonly options: JournalQueryOptions,
  ) {}

  /** Prepare a query over `files` (resolves -b, unit globs; checks every filter). */
  static async open(files: JournalFile[], options: JournalQueryOptions = {}): Promise<JournalQuery> {
    const matches = await buildMatches(files, options);
    return new JournalQuery(new JournalReader(files, matches), options);
  }

  /** The cursor of the last entry yielded (what -f resumes from, --show-cursor prints). */
  get cursor(): string | undefined {
    return this.reader.current?.cursor;
  }

  /** Entries journalctl would print now. */
  async *entries(): AsyncGenerator<JournalEntry> {
    const o = this.options;
    if (!this.started) {
      this.started = true;
      this.pending = await this.start();
      if (!this.pending) this.needSeek = true;
    }
    const limited = () => o.lines !== undefined && !(o.follow && !this.firstRound) && this.shown >= o.lines;
    try {
      while (!limited()) {
        let e: JournalEntry | undefined;
        if (this.needSeek) {
          e = await this.reader.next();
          if (!e) break;
        } else {
          e = this.pending ?? this.reader.current;
          this.pending = undefined;
          if (!e) break;
        }
        this.needSeek = true;
        if (o.until !== undefined && e.realtime > o.until) break;
        this.shown++;
        this.beforeLast = this.lastYielded;
        this.lastYielded = e.cursor;
        yield e;
      }
    } finally {
      this.firstRound = false;
    }
  }

  /**
   * The caller could not handle the last entry yielded (reading its fields
   * failed retryably: a live file caught half-written, the DATA objects
   * behind a complete-looking entry not yet on disk). The next entries(),
   * after a refresh(), yields it again instead of going on after it.
   */
  unread(): void {
    if (this.lastYielded === undefined) return;
    if (this.beforeLast === undefined) {
      // The first entry: nothing was handled, so start again from the beginning.
      this.started = false;
      this.firstRound = true;
      this.shown = 0;
      this.needSeek = false;
    } else {
      this.reader.seekAfterCursor(this.beforeLast);
      this.needSeek = true;
      this.shown--;
    }
    this.pending = undefined;
    this.lastYielded = this.beforeLast;
    this.beforeLast = undefined;
  }

  /** journalctl's starting position; returns the entry positioned on, if the start step read one. */
  private async start(): Promise<JournalEntry | undefined> {
    const o = this.options;
    const r = this.reader;
    const cursor = o.cursor ?? o.afterCursor;
    if (cursor !== undefined) {
      r.seekCursor(cursor);
      const after = o.afterCursor !== undefined && o.cursor === undefined;
      const n = await r.skip('down', after ? 2 : 1);
      if (after && n < 2) {
        // Nothing after the cursor yet: follow goes on from there, otherwise nothing is shown.
        if (!o.follow) this.shown = Number.MAX_SAFE_INTEGER;
        return undefined;
      }
      return n > 0 ? r.current : undefined;
    }
    if (o.since !== undefined) {
      r.seekRealtime(o.since);
      return r.next();
    }
    if (o.lines !== undefined) {
      r.seekTail();
      const n = await r.skip('up', o.lines);
      return n > 0 ? r.current : undefined;
    }
    r.seekHead();
    return r.next();
  }

  /**
   * Refresh every file (each refreshes its source) and re-resolve the matches;
   * the next entries() goes on after the last entry yielded.
   */
  async refresh(): Promise<void> {
    for (const f of this.reader.files) await f.refresh();
    this.reader.invalidate();
  }

  /** Rotation: read this set of files from now on (files already read keep their place by file_id). */
  setFiles(files: JournalFile[]): void {
    this.reader.setFiles(files);
    this.reader.invalidate();
  }

  /** Warnings collected while reading (entries skipped, chains cut short). */
  get warnings(): string[] {
    return this.reader.warnings;
  }
}
