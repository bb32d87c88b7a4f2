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
    const buf = this.windows.get(w);
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
      const start = w * WINDOW_BYTES;
      const size = Math.min(WINDOW_BYTES, this.source.size - start);
      this.reads++;
      const buf = await this.source.read(start, size);
      this.windows.set(w, buf);
      return buf.subarray(offset - start, offset - start + length);
    }
    this.reads++;
    return this.source.read(offset, length);
  }

  /** Forget every window: the file may have changed under us. */
  clear(): void {
    this.windows.clear();
  }
}
