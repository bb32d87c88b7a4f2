/**
 * A bounded LRU of metadata blocks (inode-table blocks, extent and indirect
 * blocks, directory blocks) keyed by block number. It holds promises so that
 * concurrent readers of one block share one read. File data never goes through
 * it: a large read would only evict the metadata we want to keep.
 */
import type { BlockSource } from '@guestlens/qcow2-js';

export class BlockCache {
  private entries = new Map<number, Promise<Buffer>>();
  private readonly maxEntries: number;

  constructor(
    private readonly source: BlockSource,
    readonly blockSize: number,
    maxBytes = 16 * 1024 * 1024,
  ) {
    this.maxEntries = Math.max(16, Math.floor(maxBytes / blockSize));
  }

  /** One block; the returned buffer is shared: callers must not modify it. */
  read(block: number): Promise<Buffer> {
    const hit = this.entries.get(block);
    if (hit) {
      // Re-insert to mark it most recently used.
      this.entries.delete(block);
      this.entries.set(block, hit);
      return hit;
    }
    const p = this.source.read(block * this.blockSize, this.blockSize);
    this.entries.set(block, p);
    p.catch(() => {
      if (this.entries.get(block) === p) this.entries.delete(block);
    });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as number;
      this.entries.delete(oldest);
    }
    return p;
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}
