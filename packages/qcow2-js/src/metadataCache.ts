/**
 * What one opened chain caches: L2 tables, and decompressed clusters for
 * reads that cover part of one. Both are byte-bounded LRUs shared by every
 * layer of the chain, so a deep chain cannot multiply the memory it holds.
 * Keys are prefixed by the owning layer so `refresh()` of one layer drops
 * only its own.
 */
import { BoundedLru } from '@guestlens/block';

export type ByteCache = BoundedLru<string, Buffer>;

export interface ChainCache {
  l2Tables: ByteCache;
  clusters: ByteCache;
}

export const DEFAULT_L2_CACHE_BYTES = 32 * 1024 * 1024;
export const DEFAULT_CLUSTER_CACHE_BYTES = 8 * 1024 * 1024;

const byLength = (b: Buffer) => b.length;

export function createChainCache(l2Bytes = DEFAULT_L2_CACHE_BYTES, clusterBytes = DEFAULT_CLUSTER_CACHE_BYTES): ChainCache {
  return { l2Tables: new BoundedLru(l2Bytes, byLength), clusters: new BoundedLru(clusterBytes, byLength) };
}

/** Drop every entry a layer put in `cache`. */
export function dropLayer(cache: ByteCache, prefix: string): void {
  cache.deleteWhere((k) => k.startsWith(prefix));
}
