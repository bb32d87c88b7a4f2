/**
 * A least-recently-used cache bounded by bytes, shared by every layer of one
 * backing chain so a deep chain cannot multiply the memory it holds. Keys are
 * prefixed by the owning layer so `refresh()` of one layer drops only its own.
 */
export class ByteBoundedLru {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;

  constructor(readonly budgetBytes: number) {}

  get(key: string): Buffer | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      // Re-insert: Map iteration order is insertion order, so the first key is the least recently used.
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: string, value: Buffer): void {
    const old = this.entries.get(key);
    if (old !== undefined) {
      this.entries.delete(key);
      this.bytes -= old.length;
    }
    this.entries.set(key, value);
    this.bytes += value.length;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.budgetBytes || this.entries.size <= 1) break;
      this.entries.delete(k);
      this.bytes -= v.length;
    }
  }

  /** Drop every entry whose key starts with `prefix`. */
  dropPrefix(prefix: string): void {
    for (const [k, v] of this.entries) {
      if (k.startsWith(prefix)) {
        this.entries.delete(k);
        this.bytes -= v.length;
      }
    }
  }

  get size(): number {
    return this.bytes;
  }
}

/** What one opened chain caches: L2 tables, and decompressed clusters for reads that cover part of one. */
export interface ChainCache {
  l2Tables: ByteBoundedLru;
  clusters: ByteBoundedLru;
}

export const DEFAULT_L2_CACHE_BYTES = 32 * 1024 * 1024;
export const DEFAULT_CLUSTER_CACHE_BYTES = 8 * 1024 * 1024;

export function createChainCache(l2Bytes = DEFAULT_L2_CACHE_BYTES, clusterBytes = DEFAULT_CLUSTER_CACHE_BYTES): ChainCache {
  return { l2Tables: new ByteBoundedLru(l2Bytes), clusters: new ByteBoundedLru(clusterBytes) };
}
