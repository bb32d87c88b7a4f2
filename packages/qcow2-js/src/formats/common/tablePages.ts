/**
 * A table of fixed-size entries in the image file (a VDI block map, a VHD or
 * VHDX BAT) read in pages on demand and kept in the chain's bounded cache:
 * opening an image costs one page however large its table says it is, and a
 * hostile table can make us hold at most the cache's budget. Concurrent
 * readers of one page share one read.
 */
import type { BlockSource } from '@guestlens/block';
import { corruptError } from '../../errors.ts';
import { dropLayer, type ByteCache } from '../../metadataCache.ts';

/** Bytes of a table read at once. */
export const TABLE_PAGE_BYTES = 64 * 1024;

export interface TablePage {
  bytes: Buffer;
  /** Index of the first entry in `bytes`. */
  first: number;
  /** Entries in `bytes`. */
  count: number;
}

export class TablePages {
  private readonly loading = new Map<number, Promise<TablePage>>();
  readonly entriesPerPage: number;

  constructor(
    private readonly file: BlockSource,
    private readonly cache: ByteCache,
    /** Unique per layer and table. */
    private readonly keyPrefix: string,
    /** File offset of entry 0. */
    readonly offset: number,
    readonly entries: number,
    readonly entryBytes: number,
    private readonly image: string,
    /** How messages name the table ("block allocation table"). */
    private readonly what: string,
  ) {
    this.entriesPerPage = Math.floor(TABLE_PAGE_BYTES / entryBytes);
  }

  /** File offset of entry `index` (for messages). */
  entryOffset(index: number): number {
    return this.offset + index * this.entryBytes;
  }

  /** The page holding entry `index` (< entries). */
  page(index: number): Promise<TablePage> {
    const p = Math.floor(index / this.entriesPerPage);
    const key = `${this.keyPrefix}${p}`;
    const first = p * this.entriesPerPage;
    const count = Math.min(this.entriesPerPage, this.entries - first);
    const cached = this.cache.get(key);
    if (cached) return Promise.resolve({ bytes: cached, first, count });
    let loading = this.loading.get(p);
    if (!loading) {
      loading = this.load(first, count).then(
        (bytes) => {
          this.cache.set(key, bytes);
          this.loading.delete(p);
          return { bytes, first, count };
        },
        (err: unknown) => {
          this.loading.delete(p);
          throw err;
        },
      );
      this.loading.set(p, loading);
    }
    return loading;
  }

  /** Forget every page (refresh: a writer may have changed any entry). */
  clear(): void {
    dropLayer(this.cache, this.keyPrefix);
    this.loading.clear();
  }

  private async load(first: number, count: number): Promise<Buffer> {
    const at = this.entryOffset(first);
    const bytes = count * this.entryBytes;
    if (at + bytes > this.file.size) await this.file.refresh();
    if (at + bytes > this.file.size) {
      throw corruptError(this.image, `${this.what} entries ${first}..${first + count - 1} (at offset ${at}) lie past the end of the file (${this.file.size} bytes)`, at);
    }
    return this.file.read(at, bytes);
  }
}
