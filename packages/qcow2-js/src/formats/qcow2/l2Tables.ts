/**
 * Loading L2 tables: from the chain's bounded cache, or from the file with
 * one read per table however many callers ask at once. A table that lies
 * past the end of the file is corrupt (or not yet written by a live writer:
 * the file's size is re-read once before saying so).
 */
import type { BlockSource } from '@guestlens/block';
import { corruptError } from '../../errors.ts';
import type { ByteCache } from '../../metadataCache.ts';
import { dropLayer } from '../../metadataCache.ts';

export class L2TableLoader {
  private readonly loading = new Map<number, Promise<Buffer>>();

  constructor(
    private readonly file: BlockSource,
    private readonly cache: ByteCache,
    /** Cache keys of this layer start with it. */
    private readonly keyPrefix: string,
    private readonly image: string,
  ) {}

  /** The L2 table at file offset `l2Offset` (named by L1 entry `l1Index`, which lives at `l1EntryOffset`). */
  table(l2Offset: number, clusterSize: number, l1Index: number, l1EntryOffset: number): Promise<Buffer> {
    const key = this.keyPrefix + l2Offset;
    const cached = this.cache.get(key);
    if (cached) return Promise.resolve(cached);
    let loading = this.loading.get(l2Offset);
    if (!loading) {
      loading = this.load(l2Offset, clusterSize, l1Index, l1EntryOffset).then(
        (table) => {
          this.cache.set(key, table);
          this.loading.delete(l2Offset);
          return table;
        },
        (err: unknown) => {
          this.loading.delete(l2Offset);
          throw err;
        },
      );
      this.loading.set(l2Offset, loading);
    }
    return loading;
  }

  /** Forget every table (refresh: the writer may have rewritten any of them). */
  clear(): void {
    dropLayer(this.cache, this.keyPrefix);
    this.loading.clear();
  }

  private async load(l2Offset: number, bytes: number, l1Index: number, l1EntryOffset: number): Promise<Buffer> {
    if (l2Offset + bytes > this.file.size) await this.file.refresh();
    if (l2Offset + bytes > this.file.size) {
      throw corruptError(this.image, `L2 table ${l1Index} at offset ${l2Offset} lies past the end of the file (${this.file.size} bytes)`, l1EntryOffset);
    }
    return this.file.read(l2Offset, bytes);
  }
}
