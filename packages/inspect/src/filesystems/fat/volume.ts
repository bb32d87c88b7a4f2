/**
 * What every FAT structure reader needs: the block source, the boot sector's
 * geometry, the metadata sector cache (FAT sectors, directory entries), the
 * limits, and how to name errors. One object, rebuilt on refresh(), so
 * nothing cached survives a refresh.
 */
import type { BlockSource } from '@guestlens/block';
import { BlockCache } from '../blockCache.ts';
import type { BootSector } from './bootSector.ts';
import { FatCorruptError } from './errors.ts';
import { FAT_START_ENT, type KernelGeometry } from './layout.ts';

export interface FatLimits {
  /** Largest single read() in bytes. */
  maxReadBytes: number;
  /** Largest directory we list, in bytes (FAT itself stops at 65536 entries, 2 MiB). */
  maxDirectoryBytes: number;
  /** Most runs of contiguous clusters one file's chain may have before we refuse it as too fragmented. */
  maxChainRuns: number;
  /** Bytes of metadata sectors kept in the cache. */
  cacheBytes: number;
  /** Bytes of assembled directories kept. */
  directoryCacheBytes: number;
  /** Runs of cluster chains kept (over all files). */
  chainCacheRuns: number;
  /** Most entries inodes() collects before it sorts them. */
  maxInodes: number;
}

export const DEFAULT_LIMITS: FatLimits = {
  maxReadBytes: 64 * 1024 * 1024,
  maxDirectoryBytes: 16 * 1024 * 1024,
  maxChainRuns: 1 << 20,
  cacheBytes: 8 * 1024 * 1024,
  directoryCacheBytes: 32 * 1024 * 1024,
  chainCacheRuns: 1 << 21,
  maxInodes: 4_000_000,
};

export class FatVolume {
  readonly cache: BlockCache;
  readonly geometry: KernelGeometry;
  readonly sectorSize: number;
  readonly clusterSize: number;
  /** Byte offset of cluster 2. */
  readonly dataOffset: number;

  constructor(
    readonly source: BlockSource,
    readonly boot: BootSector,
    readonly retryable: boolean,
    readonly limits: FatLimits,
  ) {
    this.geometry = boot.geometry;
    this.sectorSize = boot.geometry.sectorSize;
    this.clusterSize = boot.geometry.clusterSize;
    this.dataOffset = boot.geometry.dataStart * boot.geometry.sectorSize;
    this.cache = new BlockCache(source, this.sectorSize, limits.cacheBytes);
  }

  get image(): string {
    return this.source.name;
  }

  corrupt(structure: string, offset: number | undefined, detail: string): FatCorruptError {
    return new FatCorruptError(this.image, structure, offset, detail, { retryable: this.retryable });
  }

  /** A valid data cluster number (the kernel's fat_valid_entry). */
  validCluster(cluster: number): boolean {
    return cluster >= FAT_START_ENT && cluster < this.geometry.maxCluster;
  }

  /** Byte offset of a data cluster on the source. */
  clusterOffset(cluster: number): number {
    return this.dataOffset + (cluster - FAT_START_ENT) * this.clusterSize;
  }

  /** One metadata sector through the cache; `what` names it when it lies past the end of the device. */
  async sector(n: number, what: string): Promise<Buffer> {
    if ((n + 1) * this.sectorSize > this.source.size) {
      throw this.corrupt(what, n * this.sectorSize, `sector ${n} lies beyond the end of the device (${this.source.size} bytes)`);
    }
    return this.cache.read(n);
  }

  /** Uncached bytes (file data, whole directories, the FAT for statfs); `what` names them when they lie past the end. */
  async bytes(offset: number, length: number, what: string): Promise<Buffer> {
    if (offset + length > this.source.size) {
      throw this.corrupt(what, offset, `${length} bytes at byte ${offset} reach beyond the end of the device (${this.source.size} bytes)`);
    }
    return this.source.read(offset, length);
  }
}
