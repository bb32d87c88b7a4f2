/**
 * Random access to one journal file's bytes through its BlockSource, in
 * aligned windows kept in the one bounded LRU. Journal objects are small and
 * written in order, so an entry, its data objects and its neighbours mostly
 * fall in a window already read; a 100k-entry file costs a few hundred
 * reads instead of millions.
 *
 * Reads beyond `limit` (header_size + arena_size, and never past the
 * source's end) are refused by the caller's checks before they get here.
 */
import { BoundedLru, type BlockSource } from '@guestlens/block';

export const WINDOW_BYTES = 64 * 1024;

export class FileBytes {
  private readonly windows: BoundedLru<number, Buffer>;
  /** The window used last: most reads fall in it, and it costs no cache lookup. */
  private lastIndex = -1;
  private lastWindow: Buffer | undefined;
  reads = 0;

  constructor(
    readonly source: BlockSource,
    cacheBytes: number,
  ) {
    this.windows = new BoundedLru<number, Buffer>(Math.max(cacheBytes, 2 * WINDOW_BYTES), (b) => b.length);
  }

  /** The bytes [offset, offset + length) when they lie in one cached window; no I/O. */
  peek(offset: number, length: number): Buffer | undefined {
    const w = Math.floor(offset / WINDOW_BYTES);
    if (Math.floor((offset + length - 1) / WINDOW_BYTES) !== w) return undefined;
    let buf: Buffer | undefined;
    if (w === this.lastIndex) buf = this.lastWindow;
    else {
      buf = this.windows.get(w);
      if (buf) {
        this.lastIndex = w;
        this.lastWindow = buf;
      }
    }
    const at = offset - w * WINDOW_BYTES;
    if (!buf || at + length > buf.length) return undefined;
    return buf.subarray(at, at + length);
  }

  /**
   * The bytes [offset, offset + length): a view into a cached window when the
   * range fits one, else a fresh buffer read straight from the source.
   * The caller has checked that the range lies within the source.
   */
  async read(offset: number, length: number): Promise<Buffer> {
    const hit = this.peek(offset, length);
    if (hit) return hit;
    const w = Math.floor(offset / WINDOW_BYTES);
    if (Math.floor((offset + length - 1) / WINDOW_BYTES) === w) {
      const buf = await this.load(w);
      // Entries are read in file order: have the next window on its way while this one is used.
      this.prefetch(w + 1);
      const at = offset - w * WINDOW_BYTES;
      return buf.subarray(at, at + length);
    }
    this.reads++;
    return this.source.read(offset, length);
  }

  private readonly inflight = new Map<number, Promise<Buffer>>();

  private load(w: number): Promise<Buffer> {
    const cached = this.windows.get(w);
    if (cached) return Promise.resolve(cached);
    let p = this.inflight.get(w);
    if (!p) {
      const start = w * WINDOW_BYTES;
      const size = Math.min(WINDOW_BYTES, this.source.size - start);
      const generation = this.generation;
      this.reads++;
      p = this.source.read(start, size).then(
        (buf) => {
          this.inflight.delete(w);
          if (generation === this.generation) {
            this.windows.set(w, buf);
            this.lastIndex = w;
            this.lastWindow = buf;
          }
          return buf;
        },
        (err: unknown) => {
          this.inflight.delete(w);
          throw err;
        },
      );
      this.inflight.set(w, p);
    }
    return p;
  }

  private prefetch(w: number): void {
    if (w * WINDOW_BYTES >= this.source.size || this.windows.has(w) || this.inflight.has(w)) return;
    this.load(w).catch(() => {}); // a failed prefetch is read (and reported) again when needed
  }

  /** Bumped by clear(): a read that began before it must not fill the cache after it. */
  private generation = 0;

  /** Forget every window: the file may have changed under us. */
  clear(): void {
    this.generation++;
    this.inflight.clear();
    this.windows.clear();
    this.lastIndex = -1;
    this.lastWindow = undefined;
  }
}
