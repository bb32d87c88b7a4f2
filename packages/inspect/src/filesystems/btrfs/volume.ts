/**
 * The devices of one btrfs filesystem and the two ways to read them: bytes
 * at a logical address (through the chunk map, trying each copy in turn)
 * and checked tree blocks (cached, bounded in bytes by the one LRU). A tree
 * block that fails its checks on one copy is read from the next copy (DUP,
 * RAID1), as the kernel does; only when every copy fails is it an error.
 */
import { BoundedLru, toSafeNumber, type BlockSource } from '@guestlens/block';
import { type Checksummer, sumAsNumber } from './checksum.ts';
import { ChunkMap, type Stripe } from './chunkMap.ts';
import { BtrfsChecksumError, BtrfsCorruptError, BtrfsUnsupportedError } from './errors.ts';
import { compareKeys, formatKey, type Key } from './key.ts';
import { CSUM_SIZE, FIRST_FREE_OBJECTID, HEADER, OBJECTID } from './layout.ts';
import { TreeBlockProblem, firstKey, parseTreeBlock, type TreeBlock } from './node.ts';
import type { Superblock } from './superblock.ts';
import { MAX_DIRECTORY_ENTRIES } from '../directoryLimit.ts';

export interface BtrfsLimits {
  /** Bytes of tree blocks kept in memory (default 16 MiB). */
  cacheBytes: number;
  /** Bytes of decompressed extents kept in memory (default 4 MiB). */
  extentCacheBytes: number;
  /** Largest single read() (default 256 MiB). */
  maxReadBytes: number;
  /** Entries of one directory we list at most (default MAX_DIRECTORY_ENTRIES). */
  maxDirectoryEntries: number;
}

export const DEFAULT_LIMITS: BtrfsLimits = {
  cacheBytes: 16 * 1024 * 1024,
  extentCacheBytes: 4 * 1024 * 1024,
  maxReadBytes: 256 * 1024 * 1024,
  maxDirectoryEntries: MAX_DIRECTORY_ENTRIES,
};

/** Where a child block is expected: its address, generation and level as the parent (or root item) says. */
export interface BlockRef {
  bytenr: bigint;
  generation: bigint;
  level: number;
  /** The key the parent points with: the child's first key must equal it. */
  firstKey?: Key;
  /** What the block belongs to, for messages ("root tree", "FS tree 256"). */
  tree: string;
  /** The id of the tree it belongs to, when known: the block's header must name a fitting owner. */
  owner?: bigint;
}

export class BtrfsVolume {
  chunks: ChunkMap;
  private readonly blocks: BoundedLru<bigint, Promise<TreeBlock>>;
  /** Damage tolerated (a bad copy for which another copy was good). */
  readonly tolerated: string[] = [];

  constructor(
    /** Every device present, by devid. */
    readonly devices: Map<bigint, BlockSource>,
    readonly sb: Superblock,
    readonly checksummer: Checksummer,
    chunks: ChunkMap,
    readonly limits: BtrfsLimits,
    readonly retryable: boolean,
    /** The image named in errors (the first device's). */
    readonly image: string,
  ) {
    this.chunks = chunks;
    this.blocks = new BoundedLru(Math.max(16 * sb.nodesize, limits.cacheBytes), () => sb.nodesize);
  }

  corrupt(structure: string, offset: number | undefined, why: string): BtrfsCorruptError {
    return new BtrfsCorruptError(this.image, structure, offset, why, { retryable: this.retryable });
  }

  private device(s: Stripe): BlockSource | undefined {
    return this.devices.get(s.devid);
  }

  /** Bytes of one device; a stripe pointing past the device's end is damage, not a range error. */
  private readPhysical(dev: BlockSource, offset: bigint, length: number, what: string): Promise<Buffer> {
    const at = toSafeNumber(offset, `physical offset of ${what}`);
    if (at + length > dev.size) {
      return Promise.reject(this.corrupt(what, undefined, `its chunk maps it to bytes ${at}..${at + length} of device ${dev.name}, past its end (${dev.size} bytes)`));
    }
    return dev.read(at, length);
  }

  private missing(copies: Stripe[], what: string): BtrfsUnsupportedError {
    const ids = [...new Set(copies.map((c) => c.devid.toString()))].join(', ');
    return new BtrfsUnsupportedError(this.image, `a device that is not among the guest's disks`, `${what} is on device ${ids} only (this filesystem has ${this.sb.numDevices} devices; give every disk of the guest)`);
  }

  /** `length` bytes at a logical address (file data, compressed extents). */
  async readLogical(logical: bigint, length: number, what: string): Promise<Buffer> {
    if (length > this.limits.maxReadBytes) throw this.corrupt(what, undefined, `a read of ${length} bytes exceeds the ${this.limits.maxReadBytes}-byte bound`);
    const out = Buffer.alloc(length);
    for (const piece of this.chunks.map(logical, length, what)) {
      let done = false;
      let lastError: unknown;
      for (const copy of piece.copies) {
        const dev = this.device(copy);
        if (!dev) continue;
        try {
          const data = await this.readPhysical(dev, copy.offset, piece.length, what);
          data.copy(out, piece.at);
          done = true;
          break;
        } catch (err) {
          lastError = err;
        }
      }
      if (!done) throw lastError ?? this.missing(piece.copies, what);
    }
    return out;
  }

  /** The device copies of a logical range that lies in one stripe unit (for extents' physical offsets). */
  copiesOf(logical: bigint, length: number): Stripe[] | undefined {
    try {
      const pieces = this.chunks.map(logical, length, 'extent');
      return pieces.length === 1 ? pieces[0].copies : undefined;
    } catch {
      return undefined;
    }
  }

  /** A checked tree block (shared: callers must not modify its buffer). */
  readBlock(ref: BlockRef): Promise<TreeBlock> {
    const hit = this.blocks.get(ref.bytenr);
    const p = hit ?? this.loadBlock(ref);
    if (!hit) {
      this.blocks.set(ref.bytenr, p);
      p.catch(() => this.blocks.delete(ref.bytenr, p));
    }
    return p.then((block) => {
      this.checkExpectations(block, ref);
      return block;
    });
  }

  private async loadBlock(ref: BlockRef): Promise<TreeBlock> {
    const nodesize = this.sb.nodesize;
    const what = `tree block ${ref.bytenr} (${ref.tree})`;
    if (ref.bytenr % BigInt(this.sb.sectorsize) !== 0n) throw this.corrupt(what, undefined, 'its address is not sector aligned');
    const pieces = this.chunks.map(ref.bytenr, nodesize, what);
    const copies: (Stripe | undefined)[] = pieces.length === 1 ? pieces[0].copies : [undefined];
    let firstError: Error | undefined;
    for (const copy of copies) {
      let buf: Buffer;
      let offset: number | undefined;
      try {
        if (copy) {
          const dev = this.device(copy);
          if (!dev) continue;
          offset = toSafeNumber(copy.offset, `physical offset of ${what}`);
          buf = await this.readPhysical(dev, copy.offset, nodesize, what);
        } else {
          buf = await this.readLogical(ref.bytenr, nodesize, what);
        }
        const block = this.verify(buf, ref, offset);
        if (firstError) this.tolerated.push(`${firstError.message} (another copy was good)`);
        return block;
      } catch (err) {
        firstError ??= err as Error;
      }
    }
    throw firstError ?? this.missing(pieces[0].copies, what);
  }

  private verify(buf: Buffer, ref: BlockRef, offset: number | undefined): TreeBlock {
    const what = `tree block ${ref.bytenr} (${ref.tree})`;
    const computed = this.checksummer.digest(buf.subarray(CSUM_SIZE));
    const stored = buf.subarray(0, this.checksummer.length);
    if (!computed.equals(stored)) {
      throw new BtrfsChecksumError(this.image, `${what}, ${this.checksummer.name}`, offset, sumAsNumber(computed), sumAsNumber(Buffer.from(stored)), { retryable: this.retryable });
    }
    const bytenr = buf.readBigUInt64LE(HEADER.bytenr);
    if (bytenr !== ref.bytenr) throw this.corrupt(what, offset, `its header says it is block ${bytenr}`);
    if (!buf.subarray(HEADER.fsid, HEADER.fsid + 16).equals(this.sb.metadataUuid)) throw this.corrupt(what, offset, 'it belongs to another filesystem (fsid differs)');
    try {
      return parseTreeBlock(buf, this.sb.nodesize);
    } catch (err) {
      if (err instanceof TreeBlockProblem) throw this.corrupt(what, offset, err.message);
      throw err;
    }
  }

  /** What the parent promised: generation and level (a block reused for something else, or a loop, fails here). */
  private checkExpectations(block: TreeBlock, ref: BlockRef): void {
    const what = `tree block ${ref.bytenr} (${ref.tree})`;
    if (block.generation !== ref.generation) throw this.corrupt(what, undefined, `generation ${block.generation}, but its parent expects ${ref.generation} (parent transid verify failed)`);
    if (block.level !== ref.level) throw this.corrupt(what, undefined, `level ${block.level}, but its parent expects ${ref.level}`);
    if (ref.owner !== undefined && !ownerFits(block.owner, ref.owner)) {
      throw this.corrupt(what, undefined, `its header names tree ${block.owner} as its owner, not ${ref.owner} (the kernel's owner check refuses it)`);
    }
    if (ref.firstKey) {
      const first = firstKey(block);
      if (!first || compareKeys(first, ref.firstKey) !== 0) {
        throw this.corrupt(what, undefined, `its first key ${first ? formatKey(first) : '(none)'} is not the key ${formatKey(ref.firstKey)} its parent points with`);
      }
    }
  }

  clearCaches(): void {
    this.blocks.clear();
  }
}

/** Subvolume trees: 5 and 256..2^64-256 (snapshots share blocks, so any subvolume may own a block of another). */
function isSubvolumeTree(id: bigint): boolean {
  return id === OBJECTID.FS_TREE || (id >= BigInt(FIRST_FREE_OBJECTID) && id <= 0xffff_ffff_ffff_ff00n);
}

/** The kernel's owner check (btrfs_check_eb_owner): other trees own their blocks exactly; a subvolume's may be any subvolume's. */
function ownerFits(blockOwner: bigint, treeOwner: bigint): boolean {
  const RELOC = 0xffff_ffff_ffff_fff8n; // BTRFS_TREE_RELOC_OBJECTID (-8)
  if (treeOwner === RELOC) return true;
  if (!isSubvolumeTree(treeOwner)) return blockOwner === treeOwner;
  return isSubvolumeTree(blockOwner) || blockOwner === RELOC;
}
