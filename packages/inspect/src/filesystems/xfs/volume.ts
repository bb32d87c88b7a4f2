/**
 * What every XFS structure reader needs: the block source (a log-replayed
 * view when recovery was modelled), the parsed superblock, the metadata block
 * cache, the limits, and one way to name damage. Addresses are translated
 * here once: a file-system block number (AG number in the high bits, AG block
 * in the low sb_agblklog bits) becomes a linear block number (AG number times
 * sb_agblocks plus AG block), which times the block size is the byte offset.
 * One object, rebuilt on refresh(), so nothing cached survives a refresh.
 */
import { BoundedLru, type BlockSource } from '@guestlens/block';
import { BlockCache } from '../blockCache.ts';
import { checkXfsChecksum } from './checksum.ts';
import { XfsChecksumError, XfsCorruptError, XfsError } from './errors.ts';
import { VERSION } from './layout.ts';
import { ReplayedSource } from './replayedSource.ts';
import type { Superblock } from './superblock.ts';
import { MAX_DIRECTORY_ENTRIES } from '../directoryLimit.ts';

export interface XfsLimits {
  /** Largest single read() in bytes. */
  maxReadBytes: number;
  /** Largest directory we list, in bytes of directory blocks. */
  maxDirectoryBytes: number;
  /** Most entries one directory may have. */
  maxDirectoryEntries: number;
  /** Bytes of metadata blocks kept in the cache. */
  cacheBytes: number;
  /** Most btree blocks one mapping of a file range may visit. */
  maxBtreeBlocksPerMap: number;
  /** Most extents one extents() call returns. */
  maxExtentsPerCall: number;
  /** Most 512-byte log blocks read to find its head and tail (a hostile log cannot make us read all of a 2 GiB log). */
  maxLogScanBlocks: number;
  /** Most bytes of log records replayed (held in memory, about twice over, while replaying). */
  maxReplayBytes: number;
}

export const DEFAULT_LIMITS: XfsLimits = {
  maxReadBytes: 64 * 1024 * 1024,
  maxDirectoryBytes: 1024 * 1024 * 1024,
  maxDirectoryEntries: MAX_DIRECTORY_ENTRIES,
  cacheBytes: 16 * 1024 * 1024,
  maxBtreeBlocksPerMap: 1_000_000,
  maxExtentsPerCall: 4_000_000,
  maxLogScanBlocks: 1 << 17,
  maxReplayBytes: 128 * 1024 * 1024,
};

/** The alignment of inode chunks (xfs_ialloc_setup_geometry): sb_inoalignmt when it covers an inode cluster. */
function inodeClusterAlign(sb: Superblock): number {
  let clusterBytes = 8192;
  if (sb.version === 5 && sb.sb_inoalignmt >= Math.floor((clusterBytes * (sb.sb_inodesize / 256)) / sb.sb_blocksize)) clusterBytes *= sb.sb_inodesize / 256;
  const blocksPerCluster = clusterBytes > sb.sb_blocksize ? Math.floor(clusterBytes / sb.sb_blocksize) : 1;
  const hasAlign = sb.version === 5 || (sb.sb_versionnum & VERSION.ALIGNBIT) !== 0;
  return hasAlign && sb.sb_inoalignmt >= blocksPerCluster && sb.sb_inoalignmt > 0 ? sb.sb_inoalignmt : 1;
}

export class XfsVolume {
  readonly cache: BlockCache;
  readonly blockSize: number;
  /** 512-byte basic blocks per filesystem block (v5 headers record addresses in those). */
  readonly bbPerBlock: number;
  /** Alignment of inode chunks in blocks (the kernel's cluster_align). */
  readonly inodeClusterAlign: number;
  /**
   * Directory blocks already parsed for hashed lookups ("kind:inode:block"),
   * weighed by their entries, so a run of lookups in one big directory
   * parses each leaf and data block once.
   */
  readonly parsedDirBlocks = new BoundedLru<string, { length: number }>(200_000, (v) => v.length + 1);

  constructor(
    readonly source: BlockSource,
    readonly sb: Superblock,
    readonly retryable: boolean,
    readonly limits: XfsLimits,
    /** Damage tolerated while opening, as the kernel's read-only mount tolerates it. */
    readonly tolerated: string[] = [],
  ) {
    this.blockSize = sb.sb_blocksize;
    this.bbPerBlock = sb.sb_blocksize / 512;
    this.cache = new BlockCache(source, sb.sb_blocksize, limits.cacheBytes);
    this.inodeClusterAlign = inodeClusterAlign(sb);
  }

  /**
   * Whether `agino` can be an inode of AG `agno` (xfs_verify_agino): in the
   * first aligned cluster after the AG headers or later, and not in the
   * unaligned tail of the AG.
   */
  validAgino(agno: number, agino: number): boolean {
    if (agno < 0 || agno >= this.sb.sb_agcount) return false;
    const align = this.inodeClusterAlign;
    const headerBlocks = Math.floor((3 * this.sb.sb_sectsize) / this.blockSize) + 1;
    const first = Math.ceil(headerBlocks / align) * align * this.sb.sb_inopblock;
    const last = Math.floor(this.agLength(agno) / align) * align * this.sb.sb_inopblock - 1;
    return agino >= first && agino <= last;
  }

  /** Whether `ino` can be an inode number of this filesystem (xfs_verify_ino). */
  validIno(ino: bigint): boolean {
    const agno = ino >> BigInt(this.sb.aginoLog);
    if (agno >= BigInt(this.sb.sb_agcount)) return false;
    return this.validAgino(Number(agno), Number(ino & ((1n << BigInt(this.sb.aginoLog)) - 1n)));
  }

  get image(): string {
    return this.source.name;
  }

  corrupt(structure: string, offset: number | undefined, detail: string): XfsCorruptError {
    return new XfsCorruptError(this.image, structure, offset, detail, { retryable: this.retryable });
  }

  /**
   * Throw when the CRC of a v5 structure does not match. Structures log
   * recovery rewrote are not checked: recovery recomputes their CRCs when it
   * writes them back, which the in-memory replay does not do. `pieces` are
   * the device ranges of a structure that is not contiguous.
   */
  verifyCrc(buf: Buffer, crcOffset: number, structure: string, byteOffset: number | undefined, start = 0, length = buf.length - start, pieces?: readonly { offset: number; length: number }[]): void {
    if (this.source instanceof ReplayedSource && byteOffset !== undefined) {
      const ranges = pieces ?? [{ offset: byteOffset, length }];
      if (ranges.some((r) => (this.source as ReplayedSource).touched(r.offset, r.length))) return;
    }
    const { stored, computed } = checkXfsChecksum(buf, crcOffset, start, length);
    if (stored !== computed) throw new XfsChecksumError(this.image, structure, byteOffset, computed, stored, { retryable: this.retryable });
  }

  /** Blocks in AG `agno` (the last AG may be short). */
  agLength(agno: number): number {
    return agno === this.sb.sb_agcount - 1 ? this.sb.lastAgBlocks : this.sb.sb_agblocks;
  }

  /** Linear block number of an AG block; undefined when it is outside the filesystem. */
  agbToLinear(agno: number, agbno: number): number | undefined {
    if (!Number.isInteger(agno) || !Number.isInteger(agbno) || agno < 0 || agno >= this.sb.sb_agcount || agbno < 0 || agbno >= this.agLength(agno)) return undefined;
    return agno * this.sb.sb_agblocks + agbno;
  }

  /** Linear block number of a file-system block number (xfs_fsblock_t); undefined when it is outside the filesystem. */
  fsbToLinear(fsbno: number): number | undefined {
    if (!Number.isSafeInteger(fsbno) || fsbno < 0) return undefined;
    const span = 2 ** this.sb.sb_agblklog;
    return this.agbToLinear(Math.floor(fsbno / span), fsbno % span);
  }

  /** Whether `count` blocks from file-system block `fsbno` lie inside one AG of the filesystem (extents never cross AGs). */
  validFsbRange(fsbno: number, count: number): boolean {
    if (!Number.isSafeInteger(count) || count <= 0) return false;
    const span = 2 ** this.sb.sb_agblklog;
    const agno = Math.floor(fsbno / span);
    const agbno = fsbno % span;
    return this.fsbToLinear(fsbno) !== undefined && agbno + count <= this.agLength(agno);
  }

  /** One metadata block by linear number, through the cache (shared: do not modify). */
  readBlock(linear: number): Promise<Buffer> {
    if (!Number.isSafeInteger(linear) || linear < 0 || linear >= this.sb.sb_dblocks) {
      return Promise.reject(new XfsError('EINVAL', this.image, `block ${linear} is outside the filesystem (${this.sb.sb_dblocks} blocks)`));
    }
    return this.cache.read(linear);
  }

  /** `count` contiguous metadata blocks through the cache, joined (a multi-block directory block). */
  async readBlocksCached(linear: number, count: number): Promise<Buffer> {
    if (count === 1) return this.readBlock(linear);
    const parts: Buffer[] = [];
    for (let i = 0; i < count; i++) parts.push(await this.readBlock(linear + i));
    return Buffer.concat(parts);
  }

  /** `length` bytes at byte `offset` of the filesystem, uncached (AG headers of another size than a block, file data). */
  readBytes(offset: number, length: number): Promise<Buffer> {
    return this.source.read(offset, length);
  }

  /** A sector-sized header (AGF, AGI) of AG `agno`: `sector` sectors into the AG, via the cache of the block holding it. */
  async readAgSector(agno: number, sector: number): Promise<{ buf: Buffer; offset: number }> {
    const offset = (agno * this.sb.sb_agblocks) * this.blockSize + sector * this.sb.sb_sectsize;
    const linear = Math.floor(offset / this.blockSize);
    const block = await this.readBlock(linear);
    const within = offset - linear * this.blockSize;
    return { buf: block.subarray(within, within + this.sb.sb_sectsize), offset };
  }
}
