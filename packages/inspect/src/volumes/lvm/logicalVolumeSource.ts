/**
 * A logical volume as a block source: its segments in LV order, each one a
 * target that says where a run of the segment's bytes lies below (on a PV,
 * on another LV, nowhere for a zero segment). Reads are split at segment and
 * stripe boundaries and go straight into the caller's buffer; extent()
 * asks the source below about the same run, so holes of a sparse image show
 * through striped and linear LVs.
 */
import { checkRange, readInto, type BlockSource, type Extent } from '@guestlens/block';
import { LvmError } from './errors.ts';

/** Where a run of bytes lies: `length` bytes at `offset` of `source`, zeros, or a part that fails. */
export type Run =
  | { kind: 'data'; source: BlockSource; offset: number; length: number }
  | { kind: 'zero'; length: number }
  | { kind: 'error'; length: number; reason: string };

/** How one segment maps its bytes onto what lies below. */
export interface SegmentTarget {
  /** The run at `offset` (bytes into the segment): at least 1 byte, at most `length`. */
  locate(offset: number, length: number): Run | Promise<Run>;
  /** The sources below, for refresh. */
  readonly below: readonly BlockSource[];
  /** Drop what the target cached itself (a thin pool's btree nodes). */
  refresh?(): void;
}

export interface MappedSegment {
  /** Byte offset of the segment in the LV. */
  start: number;
  length: number;
  target: SegmentTarget;
}

/** Reads in flight at once for one request (striped LVs split a read into many runs). */
const PARALLEL_RUNS = 16;
/** Runs merged into one extent() answer at most (bounds the work of one call). */
const EXTENT_RUNS = 64;

export class LogicalVolumeSource implements BlockSource {
  private closed = false;

  constructor(
    readonly name: string,
    readonly size: number,
    /** In LV order, tiling [0, size). */
    readonly segments: readonly MappedSegment[],
  ) {}

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const out = Buffer.alloc(length);
    await this.readInto(out, 0, offset, length);
    return out;
  }

  async readInto(target: Buffer, targetOffset: number, offset: number, length: number): Promise<void> {
    this.requireOpen();
    checkRange(this, offset, length);
    const pending: Promise<void>[] = [];
    const settle = async () => {
      const results = await Promise.allSettled(pending.splice(0));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    };
    const end = offset + length;
    for (let pos = offset; pos < end; ) {
      const run = await this.runAt(pos, end - pos);
      const at = targetOffset + pos - offset;
      if (run.kind === 'zero') target.fill(0, at, at + run.length);
      else if (run.kind === 'error') {
        await settle();
        throw new LvmError('EIO', this.name, `bytes ${pos}-${pos + run.length - 1} cannot be read: ${run.reason}`);
      } else {
        pending.push(readInto(run.source, target, at, run.offset, run.length));
        if (pending.length >= PARALLEL_RUNS) await settle();
      }
      pos += run.length;
    }
    await settle();
  }

  async extent(offset: number, length: number): Promise<Extent> {
    this.requireOpen();
    checkRange(this, offset, length);
    let kind: Extent['kind'] | undefined;
    let pos = offset;
    const end = offset + length;
    for (let n = 0; n < EXTENT_RUNS && pos < end; n++) {
      const run = await this.runAt(pos, end - pos);
      let here: Extent['kind'];
      let runLength = run.length;
      if (run.kind === 'data') {
        const e = await run.source.extent(run.offset, run.length);
        here = e.kind;
        runLength = Math.max(1, Math.min(run.length, e.offset + e.length - run.offset));
      } else here = run.kind === 'zero' ? 'zero' : 'data';
      if (kind !== undefined && here !== kind) break;
      kind = here;
      pos += runLength;
      if (runLength < run.length) break;
    }
    return { offset, length: pos - offset, kind: kind ?? 'data' };
  }

  /** The LV has no metadata of its own to drop; what lies below does (each source once). */
  async refresh(): Promise<void> {
    this.requireOpen();
    const seen = new Set<BlockSource>();
    for (const s of this.segments) {
      s.target.refresh?.();
      for (const b of s.target.below) {
        if (seen.has(b)) continue;
        seen.add(b);
        await b.refresh();
      }
    }
  }

  /** Drop what the LV and the LVs below it cached (thin pool block maps), leaving PVs and images alone. */
  dropCaches(seen = new Set<BlockSource>()): void {
    if (seen.has(this)) return;
    seen.add(this);
    for (const s of this.segments) {
      s.target.refresh?.();
      for (const b of s.target.below) if (b instanceof LogicalVolumeSource) b.dropCaches(seen);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private async runAt(pos: number, length: number): Promise<Run> {
    const segment = this.segmentAt(pos);
    const within = pos - segment.start;
    const run = await segment.target.locate(within, Math.min(length, segment.length - within));
    // A target must make progress; one that does not is a bug, not a reason to spin.
    if (!(run.length >= 1) || run.length > length) throw new Error(`${this.name}: segment at ${segment.start} located a run of ${run.length} bytes for ${length}`);
    return run;
  }

  private segmentAt(pos: number): MappedSegment {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.segments[mid].start <= pos) lo = mid;
      else hi = mid - 1;
    }
    return this.segments[lo];
  }

  private requireOpen(): void {
    if (this.closed) throw new Error(`${this.name}: block source already closed`);
  }
}

/** A segment that is one run of bytes of a source below (linear, or one leg of a mirror). */
export class LinearTarget implements SegmentTarget {
  readonly below: readonly BlockSource[];
  constructor(
    readonly source: BlockSource,
    /** Byte offset of the segment's first byte in `source`. */
    readonly base: number,
  ) {
    this.below = [source];
  }

  locate(offset: number, length: number): Run {
    return { kind: 'data', source: this.source, offset: this.base + offset, length };
  }
}

/** A segment striped over areas in chunks of `stripeBytes` (dm-stripe): chunk i is on area i mod n. */
export class StripedTarget implements SegmentTarget {
  readonly below: readonly BlockSource[];
  constructor(
    readonly areas: readonly { source: BlockSource; base: number }[],
    readonly stripeBytes: number,
  ) {
    this.below = areas.map((a) => a.source);
  }

  locate(offset: number, length: number): Run {
    const chunk = Math.floor(offset / this.stripeBytes);
    const within = offset - chunk * this.stripeBytes;
    const area = this.areas[chunk % this.areas.length];
    const row = Math.floor(chunk / this.areas.length);
    return { kind: 'data', source: area.source, offset: area.base + row * this.stripeBytes + within, length: Math.min(length, this.stripeBytes - within) };
  }
}

/** A zero segment (reads as zeros), or an error segment (reads fail, as dm-error's do). */
export class ConstantTarget implements SegmentTarget {
  readonly below: readonly BlockSource[] = [];
  constructor(readonly kind: 'zero' | 'error') {}

  locate(_offset: number, length: number): Run {
    return this.kind === 'zero' ? { kind: 'zero', length } : { kind: 'error', length, reason: 'it is an error segment (the guest reads fail there too)' };
  }
}
