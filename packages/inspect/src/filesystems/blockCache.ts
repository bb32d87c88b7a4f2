/**
 * The metadata block cache every filesystem driver uses: blocks (inode-table
 * blocks, extent and btree nodes, directory blocks, FAT sectors) keyed by
 * block number, bounded in bytes. It holds promises so concurrent readers of
 * one block share one read; a failed read is not kept. File data never goes
 * through it: a large read would only evict the metadata we want to keep.
 */
import { BoundedLru, type BlockSource } from '@guestlens/block';

export const DEFAULT_METADATA_CACHE_BYTES = 16 * 1024 * 1024;

export class BlockCache {
  private readonly entries: BoundedLru<number, Promise<Buffer>>;

  constructor(
    private readonly source: BlockSource,
    readonly blockSize: number,
    maxBytes = DEFAULT_METADATA_CACHE_BYTES,
  ) {
    // At least 16 blocks, so a tiny budget still holds one tree path.
    this.entries = new BoundedLru(Math.max(16, Math.floor(maxBytes / blockSize)));
  }

  /** One block; the returned buffer is shared: callers must not modify it. */
  read(block: number): Promise<Buffer> {
    const hit = this.entries.get(block);
    if (hit) return hit;
    const p = this.source.read(block * this.blockSize, this.blockSize);
    this.entries.set(block, p);
    p.catch(() => this.entries.delete(block, p));
    return p;
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}
