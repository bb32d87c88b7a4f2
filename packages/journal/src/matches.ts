/**
 * Field matches with sd-journal's semantics (sd_journal_add_match,
 * _add_disjunction, _add_conjunction), which journalctl's filters are built
 * from:
 *
 *   level 0: AND of level-1 terms          (a conjunction starts a new one)
 *   level 1: OR of level-2 terms           (a disjunction starts a new one)
 *   level 2: AND of level-3 terms
 *   level 3: OR of matches on one field    ("FOO=a FOO=b": either)
 *
 * An entry matches when it has the DATA objects the tree asks for. A match
 * is resolved per file to the offset of its DATA object (through the file's
 * data hash table), so testing an entry is comparing item offsets.
 */
import { JournalQueryError } from './errors.ts';
import type { JournalFile } from './journalFile.ts';

type Level3 = Buffer[];
type Level2 = Level3[];
type Level1 = Level2[];

export class Matches {
  private level0: Level1[] = [];
  private level1: Level1 | undefined;
  private level2: Level2 | undefined;

  get empty(): boolean {
    return this.level0.length === 0;
  }

  /** Add "FIELD=value" (a Buffer for binary values). */
  add(match: string | Buffer): void {
    const data = typeof match === 'string' ? Buffer.from(match, 'utf8') : match;
    if (!matchIsValid(data)) {
      throw new JournalQueryError('EINVAL', `Failed to add match '${data.toString('utf8')}': Invalid argument (a match is FIELD=VALUE, FIELD of A-Z, 0-9 and _)`, { match: data.toString('utf8') });
    }
    if (!this.level1) {
      this.level1 = [];
      this.level0.push(this.level1);
    }
    if (!this.level2) {
      this.level2 = [];
      this.level1.push(this.level2);
    }
    const field = fieldOf(data);
    for (const term of this.level2) {
      for (const m of term) if (m.equals(data)) return; // exactly this match already
      if (fieldOf(term[0]).equals(field)) {
        term.push(data);
        return;
      }
    }
    this.level2.push([data]);
  }

  /** Start a new alternative (OR) within the current conjunction term. */
  addDisjunction(): void {
    if (this.level2 && this.level2.length > 0) this.level2 = undefined;
  }

  /** Start a new term that must hold as well (AND). */
  addConjunction(): void {
    if (this.level1 && this.level1.length > 0) {
      this.level1 = undefined;
      this.level2 = undefined;
    }
  }

  /** journalctl's debug rendering of the filter, e.g. "(FOO=a OR FOO=b) AND BAR=c". */
  toString(): string {
    const or = (xs: string[]) => (xs.length > 1 ? `(${xs.join(' OR ')})` : xs[0] ?? '');
    const and = (xs: string[]) => (xs.length > 1 ? `(${xs.join(' AND ')})` : xs[0] ?? '');
    return and(this.level0.map((l1) => or(l1.map((l2) => and(l2.map((l3) => or(l3.map((m) => m.toString('utf8')))))))));
  }

  /** Every distinct match, for resolving them in a file. */
  allMatches(): Buffer[] {
    const out: Buffer[] = [];
    for (const l1 of this.level0) for (const l2 of l1) for (const l3 of l2) out.push(...l3);
    return out;
  }

  /** Resolve the matches in one file: a tester of entries' item offsets. */
  async resolve(file: JournalFile): Promise<(items: number[]) => boolean> {
    if (this.empty) return () => true;
    const offsets = new Map<Buffer, number | undefined>();
    for (const m of this.allMatches()) {
      if (!offsets.has(m)) offsets.set(m, await file.findData(m));
    }
    const tree = this.level0.map((l1) => l1.map((l2) => l2.map((l3) => l3.map((m) => offsets.get(m)).filter((o): o is number => o !== undefined))));
    return (items) => tree.every((l1) => l1.some((l2) => l2.length > 0 && l2.every((l3) => l3.some((o) => items.includes(o)))));
  }
}

/** sd-journal's match_is_valid: FIELD of [A-Z0-9_] (not starting with "__"), then "=". */
export function matchIsValid(data: Buffer): boolean {
  if (data.length < 2) return false;
  if (data[0] === 0x5f && data[1] === 0x5f) return false;
  for (let i = 0; i < data.length; i++) {
    const c = data[i];
    if (c === 0x3d) return i > 0;
    if (c === 0x5f || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39)) continue;
    return false;
  }
  return false;
}

function fieldOf(data: Buffer): Buffer {
  const eq = data.indexOf(0x3d);
  return data.subarray(0, eq + 1);
}
