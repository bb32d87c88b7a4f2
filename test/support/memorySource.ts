/**
 * A block source over a Buffer, for every package's tests: parsers and
 * fuzzers read thousands of (mutated) images without touching the disk.
 *  - `patch()` replaces bytes of one unit (a sector) without copying the
 *    disk, so a fuzzer mutates metadata of a big image cheaply;
 *  - counters (`reads`, `bytesRead`, `largestRead`) let a test prove reads
 *    stay bounded, and `readBudget` turns a looping reader into a failure
 *    (ReadBudgetExceeded) instead of a hang;
 *  - `size` may exceed the buffer: the rest reads as zeros (a sparse disk).
 */
import { BlockRangeError, checkRange, type BlockSource, type Extent } from '@guestlens/block';

export class ReadBudgetExceeded extends Error {
  constructor(reads: number) {
    super(`more than ${reads - 1} reads in one case: a loop in the reader`);
  }
}

export class MemorySource implements BlockSource {
  readonly patches = new Map<number, Buffer>();
  reads = 0;
  bytesRead = 0;
  largestRead = 0;

  constructor(
    private readonly base: Buffer,
    readonly name = 'memory.img',
    readonly size = base.length,
    /** Granularity of `patches` (the disk's logical sector size). */
    readonly patchSize = 512,
    /** Reads allowed before ReadBudgetExceeded. */
    readonly readBudget = Infinity,
  ) {}

  /** Replace the bytes at `offset` (within one patch unit) in this source only. */
  patch(offset: number, bytes: Buffer): void {
    const unit = Math.floor(offset / this.patchSize);
    const within = offset - unit * this.patchSize;
    if (within + bytes.length > this.patchSize) throw new RangeError('a patch must stay within one unit');
    const current = this.patches.get(unit) ?? this.baseUnit(unit);
    const next = Buffer.from(current);
    bytes.copy(next, within);
    this.patches.set(unit, next);
  }

  /** The current bytes of one patch unit. */
  unit(index: number): Buffer {
    return Buffer.from(this.patches.get(index) ?? this.baseUnit(index));
  }

  private baseUnit(index: number): Buffer {
    const out = Buffer.alloc(this.patchSize);
    const start = index * this.patchSize;
    if (start < this.base.length) this.base.copy(out, 0, start, Math.min(this.base.length, start + this.patchSize));
    return out;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const out = Buffer.alloc(length);
    this.fill(out, 0, offset, length);
    return out;
  }

  async readInto(target: Buffer, targetOffset: number, offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    if (targetOffset < 0 || targetOffset + length > target.length) throw new BlockRangeError(this.name, targetOffset, length, target.length);
    target.fill(0, targetOffset, targetOffset + length);
    this.fill(target, targetOffset, offset, length);
  }

  private fill(out: Buffer, at: number, offset: number, length: number): void {
    if (++this.reads > this.readBudget) throw new ReadBudgetExceeded(this.reads);
    this.bytesRead += length;
    this.largestRead = Math.max(this.largestRead, length);
    if (offset < this.base.length) this.base.copy(out, at, offset, Math.min(this.base.length, offset + length));
    if (this.patches.size) {
      const first = Math.floor(offset / this.patchSize);
      const last = Math.floor((offset + length - 1) / this.patchSize);
      for (const [unit, bytes] of this.patches) {
        if (unit < first || unit > last) continue;
        const unitStart = unit * this.patchSize;
        const from = Math.max(offset, unitStart);
        const to = Math.min(offset + length, unitStart + this.patchSize);
        bytes.copy(out, at + from - offset, from - unitStart, to - unitStart);
      }
    }
  }

  async extent(offset: number, length: number): Promise<Extent> {
    checkRange(this, offset, length);
    return { offset, length, kind: 'data' };
  }

  async refresh(): Promise<void> {}

  async close(): Promise<void> {}
}
