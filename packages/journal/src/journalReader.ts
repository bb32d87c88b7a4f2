/**
 * Entries of several journal files as one stream, interleaved and
 * deduplicated the way sd-journal does it for journalctl:
 *
 *  - each file is walked along its own entry array, and the next entry of
 *    the stream is the smallest of the files' candidates by
 *    journal_file_compare_locations: the same seqnum_id → by seqnum;
 *    otherwise the same boot → by monotonic time; otherwise by realtime;
 *    finally by xor_hash;
 *  - an entry that is not beyond the current location (by
 *    compare_with_location) is skipped in every file: the same entry in two
 *    files (a copy, a file read twice) is shown once;
 *  - a seek (head, tail, a realtime, a cursor) positions every file by
 *    bisection (seqnum when the seqnum_id matches, else realtime), as
 *    sd-journal does.
 *
 * The reader keeps its position across refresh(): after the files were
 * refreshed (or a new set given, for rotation), next() goes on from the last
 * entry returned, each new entry once.
 *
 * Unreadable entries are skipped like journalctl skips them, with a warning;
 * in a live file (opened with `live: true`, state ONLINE) they throw a
 * retryable error instead, so that nothing torn is ever returned.
 */
import { JournalCorruptError, JournalQueryError } from './errors.ts';
import type { EntryObject, JournalFile } from './journalFile.ts';
import { Matches } from './matches.ts';

type Direction = 'down' | 'up';

/** Where the reader is: sd-journal's Location. */
export interface Location {
  type: 'head' | 'tail' | 'seek' | 'discrete';
  seqnumId?: string;
  seqnum?: bigint;
  bootId?: string;
  monotonic?: bigint;
  realtime?: bigint;
  xorHash?: bigint;
}

/** One entry of the stream: the ENTRY object and the file it came from. */
export class JournalEntry {
  constructor(
    readonly file: JournalFile,
    readonly entry: EntryObject,
  ) {}

  get seqnumId(): string {
    return this.file.header.seqnumId;
  }
  get seqnum(): bigint {
    return this.entry.seqnum;
  }
  get realtime(): bigint {
    return this.entry.realtime;
  }
  get monotonic(): bigint {
    return this.entry.monotonic;
  }
  get bootId(): string {
    return this.entry.bootId;
  }

  /** journalctl's cursor: s=seqnum_id;i=seqnum;b=boot_id;m=monotonic;t=realtime;x=xor_hash (hex). */
  get cursor(): string {
    const e = this.entry;
    return `s=${this.seqnumId};i=${e.seqnum.toString(16)};b=${e.bootId};m=${e.monotonic.toString(16)};t=${e.realtime.toString(16)};x=${e.xorHash.toString(16)}`;
  }

  /**
   * The entry's "FIELD=value" payloads in item order. Items whose DATA object
   * cannot be read are left out (journalctl skips them too; the file's
   * warnings say which). In a verifying (live) file the entry is checked
   * against its hashes first.
   */
  async fields(): Promise<Buffer[]> {
    const f = this.file;
    const payloads: (Buffer | undefined)[] = [];
    for (const p of this.entry.items) {
      try {
        payloads.push(f.dataSync(p) ?? (await f.data(p)));
      } catch (err) {
        if (err instanceof JournalCorruptError && !err.retryable) {
          warnOnce(f, `entry at ${this.entry.offset}: ${err.message}; the field is left out`);
          payloads.push(undefined);
          continue;
        }
        if (isDecompressLimit(err)) {
          warnOnce(f, `entry at ${this.entry.offset}: ${(err as Error).message}; the field is left out`);
          payloads.push(undefined);
          continue;
        }
        throw err;
      }
    }
    if (f.verifyHashes) await f.verifyEntry(this.entry, payloads);
    return payloads.filter((p): p is Buffer => p !== undefined);
  }
}

function isDecompressLimit(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === 'EFBIG';
}

function warnOnce(file: JournalFile, message: string): void {
  if (file.warnings.length < 1000 && !file.warnings.includes(message)) file.warnings.push(message);
}

/**
 * Skipped entries listed one by one per file; past that, one line says the
 * rest are skipped unlisted. A header that over-claims n_entries leaves a
 * run of empty array items, one skip each: a warning per item said nothing
 * the first few did not (journalctl skips them silently).
 */
const SKIPS_LISTED = 10;
const skipsWarned = new WeakMap<JournalFile, number>();

function warnSkipped(file: JournalFile, message: string): void {
  const n = (skipsWarned.get(file) ?? 0) + 1;
  skipsWarned.set(file, n);
  if (n <= SKIPS_LISTED) warnOnce(file, message);
  else if (n === SKIPS_LISTED + 1) warnOnce(file, `more entries that cannot be read are skipped, not listed each (the first ${SKIPS_LISTED} are)`);
}

/** Per-file iteration state: sd-journal's JournalFile location fields. */
interface FileCursor {
  file: JournalFile;
  /** Global entry-array index of the candidate (or last visited entry); -1 before any. */
  index: number;
  entry?: EntryObject;
  state: 'head' | 'seek' | 'discrete' | 'tail';
  lastDirection?: Direction;
  lastNEntries: number;
  /** Resolved matches of this file (per refresh: new DATA objects may appear). */
  test?: (items: number[]) => boolean;
  /** The file was dropped from the stream after an ordering error (as journalctl does). */
  dropped: boolean;
  /** A bad item was skipped: step as journalctl does, by bisecting the current offset (its result differs once items are out of order). */
  irregular?: boolean;
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class JournalReader {
  private cursors: FileCursor[] = [];
  private location: Location = { type: 'head' };
  private currentCursor: FileCursor | undefined;

  constructor(
    files: JournalFile[],
    readonly matches: Matches = new Matches(),
  ) {
    this.setFiles(files);
  }

  /** The files read, in the order given. */
  get files(): JournalFile[] {
    return this.cursors.map((c) => c.file);
  }

  /** Warnings every file collected (unreadable entries skipped, chains cut short). */
  get warnings(): string[] {
    return this.cursors.flatMap((c) => c.file.warnings.map((w) => `${c.file.name}: ${w}`));
  }

  /**
   * Replace the set of files (rotation: a file archived under a new name, a
   * new active file). A file whose file_id was read before keeps its
   * position; a new file is positioned after the current location.
   */
  setFiles(files: JournalFile[]): void {
    const old = new Map(this.cursors.map((c) => [c.file.header.fileId, c]));
    this.cursors = files.map((file) => {
      const prev = old.get(file.header.fileId);
      if (prev) {
        prev.file = file;
        prev.test = undefined;
        return prev;
      }
      return { file, index: -1, state: 'head', lastNEntries: 0, dropped: false } satisfies FileCursor;
    });
    if (this.currentCursor && !this.cursors.includes(this.currentCursor)) this.currentCursor = undefined;
  }

  /** After the files were refreshed: matches are resolved again (new DATA objects), positions stay. */
  invalidate(): void {
    for (const c of this.cursors) c.test = undefined;
  }

  /** The entry last returned by next()/previous(). */
  get current(): JournalEntry | undefined {
    const c = this.currentCursor;
    return c?.entry ? new JournalEntry(c.file, c.entry) : undefined;
  }

  seekHead(): void {
    this.detach({ type: 'head' });
  }

  seekTail(): void {
    this.detach({ type: 'tail' });
  }

  seekRealtime(usec: bigint): void {
    this.detach({ type: 'seek', realtime: usec });
  }

  /** Position at a cursor string (as sd_journal_seek_cursor): the next next() returns the entry it names, or the first after it. */
  seekCursor(cursor: string): void {
    this.detach({ ...parseCursor(cursor), type: 'seek' });
  }

  /**
   * Position just after the entry a cursor names, as if it had been returned
   * last: next() returns the first entry beyond it (also when that entry is
   * gone, vacuumed or rotated away). What a follower resumes from.
   */
  seekAfterCursor(cursor: string): void {
    this.detach({ ...parseCursor(cursor), type: 'discrete' });
  }

  private detach(location: Location): void {
    this.location = location;
    this.currentCursor = undefined;
    for (const c of this.cursors) {
      c.index = -1;
      c.entry = undefined;
      c.state = 'head';
      c.lastDirection = undefined;
    }
  }

  async next(): Promise<JournalEntry | undefined> {
    return this.step('down');
  }

  async previous(): Promise<JournalEntry | undefined> {
    return this.step('up');
  }

  /** next() up to `n` times; returns how many steps were made (sd_journal_next_skip). */
  async skip(direction: Direction, n: number): Promise<number> {
    if (n === 0) {
      if (this.location.type !== 'discrete') await this.step(direction);
      return 0;
    }
    let done = 0;
    while (done < n) {
      if (!(await this.step(direction))) break;
      done++;
    }
    return done;
  }

  private async step(direction: Direction): Promise<JournalEntry | undefined> {
    let best: FileCursor | undefined;
    for (const c of this.cursors) {
      if (c.dropped) continue;
      let found: boolean;
      try {
        found = await this.nextBeyondLocation(c, direction);
      } catch (err) {
        if (err instanceof JournalCorruptError && !err.retryable) {
          c.dropped = true;
          warnOnce(c.file, `${err.message}; the rest of the file is not read`);
          continue;
        }
        throw err;
      }
      if (!found) {
        c.state = 'tail';
        continue;
      }
      if (!best) best = c;
      else {
        const k = compareLocations(c, best);
        if (direction === 'down' ? k < 0 : k > 0) best = c;
      }
    }
    if (!best || !best.entry) return undefined;
    const e = best.entry;
    this.location = {
      type: 'discrete',
      seqnumId: best.file.header.seqnumId,
      seqnum: e.seqnum,
      bootId: e.bootId,
      monotonic: e.monotonic,
      realtime: e.realtime,
      xorHash: e.xorHash,
    };
    this.currentCursor = best;
    best.state = 'discrete';
    return new JournalEntry(best.file, e);
  }

  private async nextBeyondLocation(c: FileCursor, direction: Direction): Promise<boolean> {
    const n = c.file.header.nEntries;
    if (c.lastDirection === direction && c.state === 'tail' && n === c.lastNEntries) return false;
    c.lastNEntries = n;
    if (c.lastDirection === direction && c.index >= 0) {
      if (c.state !== 'seek') {
        if (!(await this.advance(c, direction))) return false;
      }
    } else {
      c.lastDirection = direction;
      if (!(await this.findLocation(c, direction))) return false;
    }
    // Skip what is not beyond the current location: entries seen in another file.
    for (;;) {
      if (this.location.type !== 'discrete') return true;
      const k = compareWithLocation(c, this.location, this.currentCursor);
      if (direction === 'down' ? k > 0 : k < 0) return true;
      if (!(await this.advance(c, direction))) return false;
    }
  }

  private async tester(c: FileCursor): Promise<(items: number[]) => boolean> {
    c.test ??= await this.matches.resolve(c.file);
    return c.test;
  }

  /**
   * Move to the next readable, matching entry from `from` (inclusive) in a
   * direction. Unreadable entries are skipped (as generic_array_get does);
   * the entry offsets must move in the direction of travel.
   */
  private async scan(c: FileCursor, from: number, direction: Direction, previousOffset: number): Promise<boolean> {
    const f = c.file;
    const test = c.test ?? (await this.tester(c));
    const n = f.header.nEntries;
    const stepBy = direction === 'down' ? 1 : -1;
    for (let i = from; i >= 0 && i < n; i += stepBy) {
      let offset: number | undefined;
      let entry: EntryObject;
      try {
        offset = f.entryOffsetSync(i) ?? (await f.entryOffset(i));
        if (offset === undefined) return false; // the chain ends here
        entry = f.entrySync(offset) ?? (await f.entry(offset));
      } catch (err) {
        if (err instanceof JournalCorruptError && !err.retryable) {
          warnSkipped(f, `entry ${i}${offset === undefined ? '' : ` at ${offset}`} is skipped: ${err.message}`);
          c.irregular = true;
          continue;
        }
        throw err;
      }
      if (previousOffset > 0 && (direction === 'down' ? offset <= previousOffset : offset >= previousOffset)) {
        throw f.corrupt(`the entry array is not ordered at entry ${i}`, offset);
      }
      if (!test(entry.items)) continue;
      c.index = i;
      c.entry = entry;
      c.state = 'seek';
      return true;
    }
    return false;
  }

  private async advance(c: FileCursor, direction: Direction): Promise<boolean> {
    if (c.irregular && direction === 'down' && c.entry && this.matches.empty) {
      const i = await c.file.bisectOffset(c.entry.offset);
      if (i === undefined) return false;
      return this.scan(c, i + 1, direction, c.entry.offset);
    }
    return this.scan(c, c.index + (direction === 'down' ? 1 : -1), direction, c.entry?.offset ?? 0);
  }

  private async findLocation(c: FileCursor, direction: Direction): Promise<boolean> {
    const f = c.file;
    const n = f.header.nEntries;
    const loc = this.location;
    if (n === 0) return false;
    if (loc.type === 'head') return this.scan(c, 0, 'down', 0);
    if (loc.type === 'tail') return this.scan(c, n - 1, 'up', 0);
    if (loc.seqnum !== undefined && loc.seqnumId === f.header.seqnumId) {
      const i = await this.bisect(c, direction, (e) => cmp(e.seqnum, loc.seqnum!));
      return i === undefined ? false : this.scan(c, i, direction, 0);
    }
    if (loc.monotonic !== undefined && loc.bootId !== undefined) {
      // sd-journal bisects the boot's own entry list by monotonic time; a scan of the boot's entries finds the same one.
      const i = await this.findByMonotonic(c, direction, loc.bootId, loc.monotonic);
      if (i !== 'no-boot') return i === undefined ? false : this.scan(c, i, direction, 0);
    }
    if (loc.realtime !== undefined) {
      const i = await this.bisect(c, direction, (e) => cmp(e.realtime, loc.realtime!));
      return i === undefined ? false : this.scan(c, i, direction, 0);
    }
    return direction === 'down' ? this.scan(c, 0, 'down', 0) : this.scan(c, n - 1, 'up', 0);
  }

  /**
   * generic_array_bisect over the global array: going down, the first entry
   * not left of the needle; going up, the last entry not right of it.
   * Unreadable entries end the search there, as in sd-journal.
   */
  private async bisect(c: FileCursor, direction: Direction, test: (e: EntryObject) => number): Promise<number | undefined> {
    const f = c.file;
    let n = f.header.nEntries;
    const at = async (i: number): Promise<number | undefined> => {
      try {
        const p = await f.entryOffset(i);
        if (p === undefined) return undefined;
        return test(await f.entry(p));
      } catch (err) {
        if (err instanceof JournalCorruptError && !err.retryable) return undefined;
        throw err;
      }
    };
    // Find the count of entries left of the needle (lower bound, FOUND counting as right when going down).
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const r = await at(mid);
      if (r === undefined) {
        n = mid;
        hi = mid;
        continue;
      }
      const left = direction === 'down' ? r < 0 : r <= 0;
      if (left) lo = mid + 1;
      else hi = mid;
    }
    if (direction === 'down') return lo < n ? lo : undefined;
    return lo > 0 ? lo - 1 : undefined;
  }

  private async findByMonotonic(c: FileCursor, direction: Direction, bootId: string, monotonic: bigint): Promise<number | undefined | 'no-boot'> {
    const f = c.file;
    const n = f.header.nEntries;
    let seen = false;
    let found: number | undefined;
    for (let i = 0; i < n; i++) {
      let e: EntryObject;
      try {
        const p = await f.entryOffset(i);
        if (p === undefined) break;
        e = await f.entry(p);
      } catch (err) {
        if (err instanceof JournalCorruptError && !err.retryable) continue;
        throw err;
      }
      if (e.bootId !== bootId) continue;
      seen = true;
      if (direction === 'down') {
        if (e.monotonic >= monotonic) return i;
      } else if (e.monotonic <= monotonic) found = i;
    }
    if (!seen) return 'no-boot';
    return found;
  }
}

/** journal_file_compare_locations, on two files' candidates. */
function compareLocations(a: FileCursor, b: FileCursor): number {
  const x = a.entry!;
  const y = b.entry!;
  const sameSeqnumId = a.file.header.seqnumId === b.file.header.seqnumId;
  if (x.bootId === y.bootId && x.monotonic === y.monotonic && x.realtime === y.realtime && x.xorHash === y.xorHash && sameSeqnumId && x.seqnum === y.seqnum) return 0;
  if (sameSeqnumId) {
    const r = cmp(x.seqnum, y.seqnum);
    if (r) return r;
  }
  if (x.bootId === y.bootId) {
    const r = cmp(x.monotonic, y.monotonic);
    if (r) return r;
  }
  const r = cmp(x.realtime, y.realtime);
  if (r) return r;
  return cmp(x.xorHash, y.xorHash);
}

/** compare_with_location: a file's candidate against the reader's location. */
function compareWithLocation(c: FileCursor, l: Location, current: FileCursor | undefined): number {
  const e = c.entry!;
  const seqnumId = c.file.header.seqnumId;
  if (
    l.monotonic !== undefined && e.bootId === l.bootId &&
    l.realtime !== undefined && e.realtime === l.realtime &&
    l.xorHash !== undefined && e.xorHash === l.xorHash &&
    l.seqnum !== undefined && seqnumId === l.seqnumId && e.seqnum === l.seqnum &&
    c !== current
  ) return 0;
  if (l.seqnum !== undefined && seqnumId === l.seqnumId) {
    const r = cmp(e.seqnum, l.seqnum);
    if (r) return r;
  }
  if (l.monotonic !== undefined && e.bootId === l.bootId) {
    const r = cmp(e.monotonic, l.monotonic);
    if (r) return r;
  }
  if (l.realtime !== undefined) {
    const r = cmp(e.realtime, l.realtime);
    if (r) return r;
  }
  if (l.xorHash !== undefined) {
    const r = cmp(e.xorHash, l.xorHash);
    if (r) return r;
  }
  return 0;
}

/** sd_journal_seek_cursor's parser: `;`-separated k=v words, at least one usable position. */
export function parseCursor(cursor: string): Omit<Location, 'type'> {
  const bad = () => new JournalQueryError('EINVAL', `Failed to seek to cursor: Invalid argument (${JSON.stringify(cursor)} is not a journal cursor)`, { cursor });
  if (!cursor) throw bad();
  const out: Omit<Location, 'type'> = {};
  let seqnumId: string | undefined;
  let seqnum: bigint | undefined;
  let bootId: string | undefined;
  let monotonic: bigint | undefined;
  const hex = (s: string) => {
    const m = /^\s*(?:0x)?([0-9a-fA-F]+)/.exec(s);
    if (!m) throw bad();
    return BigInt(`0x${m[1]}`);
  };
  const id = (s: string) => {
    const t = s.replace(/-/g, '').toLowerCase();
    if (!/^[0-9a-f]{32}$/.test(t)) throw bad();
    return t;
  };
  for (const word of cursor.split(';')) {
    if (word === '') continue;
    if (word.length < 2 || word[1] !== '=') throw bad();
    const v = word.slice(2);
    switch (word[0]) {
      case 's': seqnumId = id(v); break;
      case 'i': seqnum = hex(v); break;
      case 'b': bootId = id(v); break;
      case 'm': monotonic = hex(v); break;
      case 't': out.realtime = hex(v); break;
      case 'x': out.xorHash = hex(v); break;
    }
  }
  if (seqnum !== undefined && seqnumId !== undefined) {
    out.seqnum = seqnum;
    out.seqnumId = seqnumId;
  }
  if (monotonic !== undefined && bootId !== undefined) {
    out.monotonic = monotonic;
    out.bootId = bootId;
  }
  if (out.seqnum === undefined && out.monotonic === undefined && out.realtime === undefined) throw bad();
  return out;
}
