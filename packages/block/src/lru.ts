/**
 * The one bounded least-recently-used cache of guestlens. Every cache of
 * metadata (qcow2 L2 tables and clusters, filesystem metadata blocks,
 * directories, probe reads) is one of these, bounded by a weight the owner
 * chooses (bytes, entries, directory entries), so a hostile image can make us
 * cache at most that much.
 *
 * Map iteration order is insertion order: re-inserting on every hit keeps the
 * least recently used entry first, so eviction is O(1). The newest entry is
 * never evicted, even when it alone weighs more than the budget.
 */
export class BoundedLru<K, V> {
  private readonly entries = new Map<K, { value: V; weight: number }>();
  private totalWeight = 0;

  /**
   * @param maxWeight the budget
   * @param weigh the weight of one entry (default 1: the budget is an entry count)
   */
  constructor(
    readonly maxWeight: number,
    private readonly weigh: (value: V, key: K) => number = () => 1,
  ) {
    if (!(maxWeight >= 0)) throw new RangeError(`BoundedLru budget ${maxWeight} must be a non-negative number`);
  }

  /** The value for `key`, marking it most recently used. */
  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /** The value for `key`, without touching its recency. */
  peek(key: K): V | undefined {
    return this.entries.get(key)?.value;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  set(key: K, value: V): void {
    this.delete(key);
    const weight = this.weigh(value, key);
    this.entries.set(key, { value, weight });
    this.totalWeight += weight;
    for (const [k, e] of this.entries) {
      if (this.totalWeight <= this.maxWeight || this.entries.size <= 1) break;
      this.entries.delete(k);
      this.totalWeight -= e.weight;
    }
  }

  /** Remove `key`; only if it still maps to `value` when one is given (a failed load removing itself). */
  delete(key: K, value?: V): boolean {
    const entry = this.entries.get(key);
    if (entry === undefined || (value !== undefined && entry.value !== value)) return false;
    this.entries.delete(key);
    this.totalWeight -= entry.weight;
    return true;
  }

  /** Remove every entry whose key matches. */
  deleteWhere(match: (key: K) => boolean): void {
    for (const [k, e] of this.entries) {
      if (!match(k)) continue;
      this.entries.delete(k);
      this.totalWeight -= e.weight;
    }
  }

  clear(): void {
    this.entries.clear();
    this.totalWeight = 0;
  }

  /** Number of entries. */
  get size(): number {
    return this.entries.size;
  }

  /** Sum of the entries' weights. */
  get weight(): number {
    return this.totalWeight;
  }

  keys(): IterableIterator<K> {
    return this.entries.keys();
  }
}
