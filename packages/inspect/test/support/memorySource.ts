/**
 * Block sources in memory for the inspect tests: a disk image read into a
 * Buffer (or a sparse one built from pieces), with per-sector patches so a
 * fuzzer can mutate metadata without copying the disk, and counters so a test
 * can prove reads stay bounded.
 */
import { checkRange, type BlockSource, type Extent } from '@guestlens/qcow2-js';

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
    this.reads++;
    this.bytesRead += length;
    this.largestRead = Math.max(this.largestRead, length);
    const out = Buffer.alloc(length);
    if (offset < this.base.length) this.base.copy(out, 0, offset, Math.min(this.base.length, offset + length));
    if (this.patches.size) {
      const first = Math.floor(offset / this.patchSize);
      const last = Math.floor((offset + length - 1) / this.patchSize);
      for (const [unit, bytes] of this.patches) {
        if (unit < first || unit > last) continue;
        const unitStart = unit * this.patchSize;
        const from = Math.max(offset, unitStart);
        const to = Math.min(offset + length, unitStart + this.patchSize);
        bytes.copy(out, from - offset, from - unitStart, to - unitStart);
      }
    }
    return out;
  }

  async extent(offset: number, length: number): Promise<Extent> {
    checkRange(this, offset, length);
    return { offset, length, kind: 'data' };
  }

  async refresh(): Promise<void> {}

  async close(): Promise<void> {}
}
