/**
 * Cluster chains: a file's or directory's clusters, followed through the FAT
 * from its start cluster and kept as runs of contiguous clusters (most files
 * are one run). A chain is walked lazily, only as far as a read needs (as
 * the kernel's fat_get_cluster does), and every step is checked the way the
 * kernel checks it: a start outside the data area, a free entry inside a
 * chain, a pointer outside the data area are corruption. Bounds of our own:
 * a chain longer than the volume has clusters must loop, and is refused
 * (the kernel reads on until its own limit of 4 GiB worth of clusters, and
 * fails there); a chain of more than `maxChainRuns` runs is refused as too
 * fragmented to hold in memory.
 */
import { FatError } from './errors.ts';
import { FAT_ENT_EOF, FAT_ENT_FREE, type FatTable } from './fatTable.ts';
import type { FatVolume } from './volume.ts';

export class ClusterChain {
  /** Runs: first logical cluster, first physical cluster, length. */
  private readonly lcn: number[] = [];
  private readonly pcn: number[] = [];
  private readonly len: number[] = [];
  /** Clusters mapped so far. */
  private known = 0;
  /** The end-of-chain mark was reached after `known` clusters. */
  private ended = false;
  private walking: Promise<void> | undefined;

  /**
   * @param owner names the chain's owner in errors ("directory entry at byte 12345", "root directory")
   */
  constructor(
    private readonly vol: FatVolume,
    private readonly fat: FatTable,
    readonly start: number,
    private readonly owner: string,
  ) {}

  get runCount(): number {
    return this.len.length;
  }

  /** Map at least `clusters` clusters (fewer only when the chain ends first); returns how many are mapped. */
  async extend(clusters: number): Promise<number> {
    while (this.known < clusters && !this.ended) {
      // One walker at a time: concurrent reads of one file share the walk.
      if (this.walking) {
        await this.walking;
        continue;
      }
      this.walking = this.walk(clusters);
      try {
        await this.walking;
      } finally {
        this.walking = undefined;
      }
    }
    return this.known;
  }

  /** Walk to the end of the chain; its length in clusters. */
  async length(): Promise<number> {
    return this.extend(Infinity);
  }

  private async walk(target: number): Promise<void> {
    const { vol } = this;
    const total = vol.geometry.totalClusters;
    if (this.known === 0) {
      if (!vol.validCluster(this.start)) {
        throw vol.corrupt(`cluster chain of ${this.owner}`, undefined, `starts at cluster ${this.start}, outside the data area (clusters 2..${vol.geometry.maxCluster - 1})`);
      }
      this.push(this.start);
    }
    while (this.known < target) {
      const last = this.pcn[this.pcn.length - 1] + this.len[this.len.length - 1] - 1;
      const next = await this.fat.entry(last);
      if (next === FAT_ENT_EOF) {
        this.ended = true;
        return;
      }
      const where = this.fat.entryOffset(last);
      if (next === FAT_ENT_FREE) {
        throw vol.corrupt(`FAT entry ${last}`, where, `cluster ${last} is marked free but the cluster chain of ${this.owner} goes through it`);
      }
      if (!vol.validCluster(next)) {
        throw vol.corrupt(`FAT entry ${last}`, where, `points to cluster ${next}, outside the data area (clusters 2..${vol.geometry.maxCluster - 1}), in the cluster chain of ${this.owner}`);
      }
      if (this.known >= total) {
        throw vol.corrupt(`cluster chain of ${this.owner}`, where, `it is longer than the ${total} clusters of the volume, so it loops`);
      }
      this.push(next);
    }
  }

  private push(cluster: number): void {
    const n = this.len.length;
    if (n > 0 && this.pcn[n - 1] + this.len[n - 1] === cluster) {
      this.len[n - 1]++;
    } else {
      if (n >= this.vol.limits.maxChainRuns) {
        throw new FatError('EFBIG', this.vol.image, `the cluster chain of ${this.owner} has more than ${this.vol.limits.maxChainRuns} fragments, over guestlens's limit`);
      }
      this.lcn.push(this.known);
      this.pcn.push(cluster);
      this.len.push(1);
    }
    this.known++;
  }

  /** The physical cluster of logical cluster `index` (which must be mapped). */
  clusterAt(index: number): number {
    const i = this.runIndex(index);
    return this.pcn[i] + (index - this.lcn[i]);
  }

  private runIndex(index: number): number {
    let lo = 0;
    let hi = this.lcn.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lcn[mid] <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Mapped runs overlapping logical clusters [first, first + count): {lcn, pcn, len} clipped to that range. */
  runs(first: number, count: number): { lcn: number; pcn: number; len: number }[] {
    const out: { lcn: number; pcn: number; len: number }[] = [];
    const end = Math.min(first + count, this.known);
    if (first >= end) return out;
    for (let i = this.runIndex(first); i < this.lcn.length && this.lcn[i] < end; i++) {
      const s = Math.max(first, this.lcn[i]);
      const e = Math.min(end, this.lcn[i] + this.len[i]);
      if (e > s) out.push({ lcn: s, pcn: this.pcn[i] + (s - this.lcn[i]), len: e - s });
    }
    return out;
  }
}
