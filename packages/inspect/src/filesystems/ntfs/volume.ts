/**
 * What every NTFS structure reader needs: the block source, the boot sector,
 * the driver's limits, how to name errors, and where tolerated damage is
 * recorded. The MFT reader, the $UpCase table and the caches hang off it once
 * opening has loaded them; one object per open (or refresh), so nothing
 * cached survives a refresh.
 */
import { BoundedLru, type BlockSource } from '@guestlens/block';
import type { BootSector } from './bootSector.ts';
import type { IndexEntry } from './indexEntries.ts';
import { NtfsCorruptError, NtfsError, NtfsFixupError } from './errors.ts';
import type { Mft } from './mft.ts';
import type { Upcase } from './upcase.ts';
import { MAX_DIRECTORY_ENTRIES } from '../directoryLimit.ts';

export interface NtfsLimits {
  /** Largest single read() in bytes. */
  maxReadBytes: number;
  /** Most entries one directory may have. */
  maxDirectoryEntries: number;
  /** Largest index allocation ($INDEX_ALLOCATION) we walk, in bytes. */
  maxIndexBytes: number;
  /** MFT records kept parsed in memory. */
  recordCacheEntries: number;
  /** Inodes (records with their attribute lists resolved) kept in memory, weighted by runs. */
  inodeCacheWeight: number;
  /** Directory listings kept, by total entries. */
  directoryCacheEntries: number;
  /** Largest resident-or-not metadata value read whole ($ATTRIBUTE_LIST, $REPARSE_POINT, $Secure's descriptor...). */
  maxMetadataBytes: number;
}

export const DEFAULT_LIMITS: NtfsLimits = {
  maxReadBytes: 64 * 1024 * 1024,
  maxDirectoryEntries: MAX_DIRECTORY_ENTRIES,
  maxIndexBytes: 1024 * 1024 * 1024,
  recordCacheEntries: 8192,
  inodeCacheWeight: 200_000,
  directoryCacheEntries: 200_000,
  maxMetadataBytes: 1024 * 1024,
};

/** ntfs-3g refuses attribute lists over 256 KiB (0x40000). */
export const MAX_ATTRIBUTE_LIST_BYTES = 0x40000;

export class NtfsVolume {
  /** Damage tolerated (a record read from $MFTMirr, the backup boot sector...): the answer is still right. */
  readonly warnings: string[] = [];
  mft!: Mft;
  upcase!: Upcase;
  /** Decompressed compression units (sequential reads straddle them): 32 of at most 1 MiB. */
  readonly unitCache = new BoundedLru<string, Promise<Buffer>>(32);
  /** Parsed index blocks (directories, $SII), by "record:index:vcn". */
  readonly indexBlocks = new BoundedLru<string, Promise<IndexEntry[]>>(4096);

  constructor(
    readonly source: BlockSource,
    readonly boot: BootSector,
    readonly retryable: boolean,
    readonly limits: NtfsLimits,
  ) {}

  get image(): string {
    return this.source.name;
  }
  get clusterSize(): number {
    return this.boot.clusterSize;
  }

  corrupt(structure: string, offset: number | undefined, reason: string): NtfsCorruptError {
    return new NtfsCorruptError(this.image, structure, offset, reason, { retryable: this.retryable });
  }

  fixupError(structure: string, offset: number | undefined, expected: number, found: number): NtfsFixupError {
    return new NtfsFixupError(this.image, structure, offset, expected, found, { retryable: this.retryable });
  }

  error(code: 'ENOENT' | 'ENOTDIR' | 'EISDIR' | 'EINVAL' | 'ENODATA' | 'EFBIG', detail: string): NtfsError {
    return new NtfsError(code, this.image, detail);
  }

  warn(message: string): void {
    if (!this.warnings.includes(message) && this.warnings.length < 100) this.warnings.push(message);
  }

  /** Bytes at a byte offset of the volume; a range outside the device is damage in `structure`. */
  async read(offset: number, length: number, structure: string): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.source.size) {
      throw this.corrupt(structure, offset, `${length} bytes at byte offset ${offset} are outside the device (${this.source.size} bytes)`);
    }
    return this.source.read(offset, length);
  }
}
