/**
 * Where a hive's bytes come from: a Buffer (a hive read whole into memory) or
 * a BlockSource (a big hive read on demand, e.g. a file inside an NTFS
 * filesystem inside a qcow2 image). Reads from a source go through a page
 * cache (the one BoundedLru, weighed in bytes) because a key lookup touches
 * a handful of small cells that mostly share pages; reads larger than a few
 * pages (big value data) bypass it, so they cannot evict everything else.
 *
 * Callers check every range against `size` before reading: a read here is
 * always inside the hive.
 */
import { BoundedLru, type BlockSource } from '@guestlens/block';

export interface HiveStorage {
  /** Bytes readable (the Buffer's length, or the source's size). */
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
  /** Forget cached pages (a live hive changed under us). */
  refresh(): Promise<void>;
}

export class BufferStorage implements HiveStorage {
  constructor(private readonly bytes: Buffer) {}

  get size(): number {
    return this.bytes.length;
  }

  /** A view, not a copy: nothing in this package writes to what it reads. */
  async read(offset: number, length: number): Promise<Buffer> {
    return this.bytes.subarray(offset, offset + length);
  }

  async refresh(): Promise<void> {}
}

const PAGE = 4096;
/** Reads spanning more pages than this go straight to the source. */
const MAX_CACHED_PAGES = 16;

export class SourceStorage implements HiveStorage {
  private readonly pages: BoundedLru<number, Promise<Buffer>>;

  constructor(
    private readonly source: BlockSource,
    cacheBytes: number,
  ) {
    this.pages = new BoundedLru(Math.max(cacheBytes, PAGE), () => PAGE);
  }

  get size(): number {
    return this.source.size;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const first = Math.floor(offset / PAGE);
    const last = Math.floor((offset + length - 1) / PAGE);
    if (last - first + 1 > MAX_CACHED_PAGES) return this.source.read(offset, length);
    if (first === last) {
      const page = await this.page(first);
      const at = offset - first * PAGE;
      return page.subarray(at, at + length);
    }
    const out = Buffer.alloc(length);
    for (let p = first; p <= last; p++) {
      const page = await this.page(p);
      const pageStart = p * PAGE;
      const from = Math.max(offset, pageStart);
      const to = Math.min(offset + length, pageStart + page.length);
      page.copy(out, from - offset, from - pageStart, to - pageStart);
    }
    return out;
  }

  private page(index: number): Promise<Buffer> {
    let pending = this.pages.get(index);
    if (pending === undefined) {
      const start = index * PAGE;
      const loading = this.source.read(start, Math.min(PAGE, this.source.size - start));
      pending = loading;
      this.pages.set(index, loading);
      // A failed read must not stay cached as a failure.
      loading.catch(() => this.pages.delete(index, loading));
    }
    return pending;
  }

  async refresh(): Promise<void> {
    this.pages.clear();
  }
}
