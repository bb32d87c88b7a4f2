/**
 * What every ext structure reader needs: the block source (the journal-replayed
 * view when recovery was needed), the parsed superblock and group descriptors,
 * the metadata block cache, and how to name errors. One object, rebuilt on
 * refresh(), so nothing cached survives a refresh.
 */
import type { BlockSource } from '@guestlens/block';
import { BlockCache } from '../blockCache.ts';
import { ExtCorruptError } from './errors.ts';
import type { GroupDescriptor } from './groupDescriptor.ts';
import type { Superblock } from './superblock.ts';
import { MAX_DIRECTORY_ENTRIES } from '../directoryLimit.ts';

export interface ExtLimits {
  /** Largest single read() in bytes. */
  maxReadBytes: number;
  /** Largest directory we list, in bytes of directory blocks. */
  maxDirectoryBytes: number;
  /** Most entries one directory may have. */
  maxDirectoryEntries: number;
  /** Bytes of metadata blocks kept in the cache. */
  cacheBytes: number;
}

export const DEFAULT_LIMITS: ExtLimits = {
  maxReadBytes: 64 * 1024 * 1024,
  maxDirectoryBytes: 1024 * 1024 * 1024,
  maxDirectoryEntries: MAX_DIRECTORY_ENTRIES,
  cacheBytes: 16 * 1024 * 1024,
};

export class ExtVolume {
  readonly cache: BlockCache;
  readonly blockSize: number;

  constructor(
    readonly source: BlockSource,
    readonly sb: Superblock,
    readonly groups: GroupDescriptor[],
    readonly retryable: boolean,
    readonly limits: ExtLimits,
    /** Damage tolerated while opening, as the kernel's read-only mount tolerates it. */
    readonly tolerated: readonly string[] = [],
  ) {
    this.blockSize = sb.blockSize;
    this.cache = new BlockCache(source, sb.blockSize, limits.cacheBytes);
  }

  get image(): string {
    return this.source.name;
  }

  corrupt(structure: string, offset: number | undefined, detail: string): ExtCorruptError {
    return new ExtCorruptError(this.image, structure, offset, detail, { retryable: this.retryable });
  }

  /** True when `block` (and `count` blocks from it) lie inside the filesystem. */
  validRange(block: number, count = 1): boolean {
    return Number.isSafeInteger(block) && block >= this.sb.s_first_data_block && block + count <= this.sb.s_blocks_count;
  }

  /** Uncached read of whole blocks (file data, descriptor tables). */
  readBlocks(block: number, count: number): Promise<Buffer> {
    return this.source.read(block * this.blockSize, count * this.blockSize);
  }
}
