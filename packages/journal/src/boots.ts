/**
 * Boots as journalctl -b and --list-boots find them: walking the merged
 * stream, a boot is a boot id, from the first entry after the previous
 * boot's last entry to the last entry that carries its id. Offsets: 0 is the
 * last boot in the files (with --file/--directory journalctl does not take
 * the host's boot), -1 the one before, 1 the first, 2 the second; an id with
 * an offset counts from that boot.
 */
import { JournalQueryError } from './errors.ts';
import type { JournalFile } from './journalFile.ts';
import { JournalReader } from './journalReader.ts';

export interface BootInfo {
  bootId: string;
  /** Realtime (µs) of the boot's first and last entry. */
  first: bigint;
  last: bigint;
}

export interface BootSpec {
  /** A boot id (32 hex digits, dashes allowed); absent: counted from the ends of the journal. */
  id?: string;
  offset?: number;
}

interface BootRuns {
  /** The boot of each stream position, run-length encoded (bounded by boot switches, not entries). */
  runs: { boot: string; start: number; realtime: bigint }[];
  count: number;
  first: Map<string, number>;
  last: Map<string, { index: number; realtime: bigint }>;
}

async function collect(files: JournalFile[]): Promise<BootRuns> {
  const reader = new JournalReader(files);
  const runs: BootRuns['runs'] = [];
  const first = new Map<string, number>();
  const last = new Map<string, { index: number; realtime: bigint }>();
  let i = 0;
  for (let e = await reader.next(); e; e = await reader.next(), i++) {
    const b = e.bootId;
    if (runs.at(-1)?.boot !== b) runs.push({ boot: b, start: i, realtime: e.realtime });
    if (!first.has(b)) first.set(b, i);
    last.set(b, { index: i, realtime: e.realtime });
  }
  return { runs, count: i, first, last };
}

function bootAt(r: BootRuns, i: number): string {
  return runAt(r, i).boot;
}

function runAt(r: BootRuns, i: number): BootRuns['runs'][number] {
  let lo = 0;
  let hi = r.runs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (r.runs[mid].start <= i) lo = mid;
    else hi = mid - 1;
  }
  return r.runs[lo];
}

/** Every boot, oldest first (journalctl --list-boots; its index is i - count + 1). */
export async function listBoots(files: JournalFile[]): Promise<BootInfo[]> {
  const r = await collect(files);
  const out: BootInfo[] = [];
  const seen = new Set<string>();
  for (let p = -1; p + 1 < r.count; ) {
    const b = bootAt(r, p + 1);
    if (seen.has(b)) break; // journalctl stops here too: the files interleave boots
    seen.add(b);
    const end = r.last.get(b)!;
    out.push({ bootId: b, first: runAt(r, p + 1).realtime, last: end.realtime });
    p = end.index;
  }
  return out;
}

/** The boot id a -b descriptor names, or a JournalQueryError as journalctl reports it. */
export async function resolveBoot(files: JournalFile[], spec: BootSpec): Promise<string> {
  const r = await collect(files);
  let offset = spec.offset ?? 0;
  const id = spec.id?.replace(/-/g, '').toLowerCase();
  const fail = () =>
    new JournalQueryError(
      'ENODATA',
      id ? `Data from the specified boot (${id}) is not available: No such boot ID in journal` : `Data from the specified boot (${offset >= 0 ? '+' : ''}${spec.offset ?? 0}) is not available: No such boot ID in journal`,
      { boot: spec },
    );
  const older = id === undefined ? offset <= 0 : offset <= 0;
  let skipOnce = id === undefined && offset <= 0;
  let p: number;
  if (id !== undefined) {
    if (!r.first.has(id)) throw fail();
    if (offset === 0) return id;
    p = older ? r.first.get(id)! : r.last.get(id)!.index;
  } else {
    p = older ? r.count : -1;
  }
  let previous: string | undefined = id;
  for (let guard = 0; guard <= r.count; guard++) {
    const q = older ? p - 1 : p + 1;
    if (q < 0 || q >= r.count) break;
    const b = bootAt(r, q);
    if (b === previous) {
      p = q;
      continue;
    }
    previous = b;
    if (!skipOnce) offset += older ? 1 : -1;
    skipOnce = false;
    if (offset === 0) return b;
    p = older ? r.first.get(b)! : r.last.get(b)!.index;
  }
  throw fail();
}

/** Parse journalctl's -b argument: "", "all", an offset, an id, an id with +N/-N. Undefined means all boots. */
export function parseBootDescriptor(text: string | undefined): BootSpec | undefined {
  if (text === undefined || text === '') return { offset: 0 };
  if (text === 'all') return undefined;
  const m = /^([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?([+-]?\d+)?$/.exec(text);
  if (!m || (!m[1] && !m[2])) throw new JournalQueryError('EINVAL', `Failed to parse boot descriptor '${text}'`, { boot: text });
  return { id: m[1]?.replace(/-/g, '').toLowerCase(), offset: m[2] === undefined ? 0 : Number(m[2]) };
}
