/**
 * Thin volumes: a thin pool keeps, on its metadata LV, the device-mapper
 * thin metadata (drivers/md/dm-thin-metadata.c and persistent-data/): a
 * superblock in block 0, and a two-level btree that maps a thin device id,
 * then a virtual block, to a data block of the pool's data LV (the value's
 * top 40 bits; its low 24 bits are a time stamp). A virtual block with no
 * mapping reads as zeros (or from the external origin, when there is one).
 *
 * Every metadata block is 4 KiB with its own CRC32C (xored with a constant
 * per kind), and says its own block number: both are checked where read. A
 * mismatch is retryable (the pool may have been committing while we read).
 * Nodes are cached by block number in one bounded cache per pool; a btree
 * lookup visits at most MAX_DEPTH nodes, so a loop of nodes is an error,
 * not a hang.
 */
import { BoundedLru, type BlockSource } from '@guestlens/block';
import { crc32c } from '../../filesystems/crc32c.ts';
import { LvmChecksumError, LvmCorruptError, LvmError } from './errors.ts';
import { SECTOR_SIZE } from './layout.ts';
import type { Run, SegmentTarget } from './logicalVolumeSource.ts';
import type { ThinTargetFactory } from './segmentMapping.ts';

export const THIN = {
  blockSize: 4096,
  superblockMagic: 27022010n,
  superblockCsumXor: 160774,
  btreeCsumXor: 121107,
  /** struct thin_disk_superblock. */
  sb: {
    csum: 0,
    flags: 4,
    blocknr: 8,
    uuid: 16,
    magic: 32,
    version: 40,
    time: 44,
    trans_id: 48,
    held_root: 56,
    data_space_map_root: 64,
    metadata_space_map_root: 192,
    data_mapping_root: 320,
    device_details_root: 328,
    data_block_size: 336,
    metadata_block_size: 340,
    metadata_nr_blocks: 344,
    compat_flags: 352,
    compat_ro_flags: 356,
    incompat_flags: 360,
  },
  /** struct node_header, then keys (le64) [max_entries], then values [max_entries]. */
  node: { csum: 0, flags: 4, blocknr: 8, nr_entries: 16, max_entries: 20, value_size: 24, headerSize: 32 },
  internalNode: 1,
  leafNode: 2,
  /** Low bits of a mapping value that hold its time stamp. */
  timeBits: 24n,
} as const;

/** Levels of nodes a lookup may pass (4 KiB nodes hold 255 entries: 8 levels already address 2^64 keys). */
const MAX_DEPTH = 16;
/** Node cache per pool. */
const NODE_CACHE_BYTES = 4 * 1024 * 1024;

interface Superblock {
  mappingRoot: bigint;
  dataBlockSectors: number;
  metadataBlocks: bigint;
}

/** The metadata of one pool: superblock and btree lookups, cached until refresh. */
export class ThinPoolMetadata {
  private superblock?: Promise<Superblock>;
  private readonly nodes = new BoundedLru<bigint, Promise<Buffer>>(NODE_CACHE_BYTES, () => THIN.blockSize);
  private readonly deviceRoots = new BoundedLru<number, Promise<bigint | undefined>>(1024);

  constructor(
    readonly metadata: BlockSource,
    /** The pool's chunk size from the VG metadata, in sectors (the superblock must agree). */
    readonly chunkSectors: number,
    /** How messages name the pool (vg/pool). */
    readonly pool: string,
  ) {}

  refresh(): void {
    this.superblock = undefined;
    this.nodes.clear();
    this.deviceRoots.clear();
  }

  /** The data block a virtual block of thin device `device` maps to, or undefined for a hole. */
  async lookup(device: number, vblock: number): Promise<bigint | undefined> {
    let root = this.deviceRoots.get(device);
    if (!root) {
      const p = this.sb().then((sb) => this.find(sb.mappingRoot, BigInt(device), 8, 'device mapping tree'));
      this.deviceRoots.set(device, p);
      p.catch(() => this.deviceRoots.delete(device, p));
      root = p;
    }
    const r = await root;
    if (r === undefined) throw new LvmError('EFSCORRUPTED', this.metadata.name, `thin device ${device} is not in the metadata of pool ${this.pool}`);
    const value = await this.find(r, BigInt(vblock), 8, `block map of thin device ${device}`);
    return value === undefined ? undefined : value >> THIN.timeBits;
  }

  private sb(): Promise<Superblock> {
    if (!this.superblock) {
      const p = this.readSuperblock();
      this.superblock = p;
      p.catch(() => {
        if (this.superblock === p) this.superblock = undefined;
      });
    }
    return this.superblock;
  }

  private async readSuperblock(): Promise<Superblock> {
    const s = this.metadata;
    const corrupt = (reason: string) => new LvmCorruptError(s.name, `thin pool ${this.pool} metadata superblock`, 0, reason);
    if (s.size < THIN.blockSize) throw corrupt('the metadata volume is smaller than one block');
    const b = await s.read(0, THIN.blockSize);
    if (b.readBigUInt64LE(THIN.sb.magic) !== THIN.superblockMagic) {
      throw corrupt(b.every((x) => x === 0) ? 'it is all zeros (the pool was never activated)' : 'its magic number is wrong');
    }
    checksum(b, THIN.superblockCsumXor, s.name, `thin pool ${this.pool} metadata superblock`, 0);
    if (b.readBigUInt64LE(THIN.sb.blocknr) !== 0n) throw corrupt('it does not say it is block 0');
    const version = b.readUInt32LE(THIN.sb.version);
    if (version < 1 || version > 2) throw new LvmError('EOPNOTSUPP', s.name, `thin pool ${this.pool}: metadata version ${version}, which guestlens does not read`);
    const incompat = b.readUInt32LE(THIN.sb.incompat_flags);
    if (incompat !== 0) throw new LvmError('EOPNOTSUPP', s.name, `thin pool ${this.pool}: incompatible metadata features 0x${incompat.toString(16)}, which guestlens does not read`);
    if (b.readUInt32LE(THIN.sb.metadata_block_size) !== THIN.blockSize / SECTOR_SIZE) throw corrupt(`metadata blocks of ${b.readUInt32LE(THIN.sb.metadata_block_size)} sectors, not 8`);
    const dataBlockSectors = b.readUInt32LE(THIN.sb.data_block_size);
    if (dataBlockSectors !== this.chunkSectors) throw corrupt(`data blocks of ${dataBlockSectors} sectors, but the volume group says the pool's chunks are ${this.chunkSectors}`);
    return { mappingRoot: b.readBigUInt64LE(THIN.sb.data_mapping_root), dataBlockSectors, metadataBlocks: b.readBigUInt64LE(THIN.sb.metadata_nr_blocks) };
  }

  /** The value stored for `key` in the btree at `root` (values of `valueSize` bytes), as a 64-bit number; undefined if absent. */
  private async find(root: bigint, key: bigint, valueSize: number, what: string): Promise<bigint | undefined> {
    let block = root;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      const node = await this.node(block, valueSize, what);
      const n = node.readUInt32LE(THIN.node.nr_entries);
      const max = node.readUInt32LE(THIN.node.max_entries);
      const internal = (node.readUInt32LE(THIN.node.flags) & THIN.internalNode) !== 0;
      // The last key <= key: in an internal node its child covers key; in a leaf it must be key itself.
      let lo = -1;
      let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (node.readBigUInt64LE(THIN.node.headerSize + mid * 8) <= key) lo = mid;
        else hi = mid - 1;
      }
      const valueAt = THIN.node.headerSize + max * 8 + lo * (internal ? 8 : valueSize);
      if (internal) {
        if (lo < 0) return undefined;
        block = node.readBigUInt64LE(valueAt);
        continue;
      }
      if (lo < 0 || node.readBigUInt64LE(THIN.node.headerSize + lo * 8) !== key) return undefined;
      return node.readBigUInt64LE(valueAt);
    }
    throw new LvmCorruptError(this.metadata.name, `thin pool ${this.pool} ${what}`, undefined, `more than ${MAX_DEPTH} levels of btree nodes (a loop)`);
  }

  private node(block: bigint, valueSize: number, what: string): Promise<Buffer> {
    let p = this.nodes.get(block);
    if (!p) {
      p = this.readNode(block, valueSize, what);
      this.nodes.set(block, p);
      const mine = p;
      p.catch(() => this.nodes.delete(block, mine));
    }
    return p;
  }

  private async readNode(block: bigint, valueSize: number, what: string): Promise<Buffer> {
    const s = this.metadata;
    const offset = block * BigInt(THIN.blockSize);
    const structure = `thin pool ${this.pool} ${what}, node at block ${block}`;
    if (offset + BigInt(THIN.blockSize) > BigInt(s.size)) throw new LvmCorruptError(s.name, structure, undefined, `block ${block} is past the end of the metadata volume`);
    const at = Number(offset);
    const b = await s.read(at, THIN.blockSize);
    checksum(b, THIN.btreeCsumXor, s.name, structure, at);
    const corrupt = (reason: string) => new LvmCorruptError(s.name, structure, at, reason);
    if (b.readBigUInt64LE(THIN.node.blocknr) !== block) throw corrupt(`it says it is block ${b.readBigUInt64LE(THIN.node.blocknr)}`);
    const flags = b.readUInt32LE(THIN.node.flags);
    if ((flags & (THIN.internalNode | THIN.leafNode)) === 0 || (flags & THIN.internalNode && flags & THIN.leafNode)) throw corrupt(`flags 0x${flags.toString(16)} make it neither an internal node nor a leaf`);
    const n = b.readUInt32LE(THIN.node.nr_entries);
    const max = b.readUInt32LE(THIN.node.max_entries);
    const size = b.readUInt32LE(THIN.node.value_size);
    const internal = (flags & THIN.internalNode) !== 0;
    if (size !== (internal ? 8 : valueSize)) throw corrupt(`values of ${size} bytes, not ${internal ? 8 : valueSize}`);
    if (n > max || THIN.node.headerSize + max * (8 + size) > THIN.blockSize) throw corrupt(`${n} of ${max} entries do not fit in a block`);
    for (let i = 1; i < n; i++) {
      if (b.readBigUInt64LE(THIN.node.headerSize + i * 8) <= b.readBigUInt64LE(THIN.node.headerSize + (i - 1) * 8)) throw corrupt('its keys are not in order');
    }
    return b;
  }
}

function checksum(block: Buffer, xor: number, source: string, structure: string, offset: number): void {
  const computed = (crc32c(0xffffffff, block, 4) ^ xor) >>> 0;
  const stored = block.readUInt32LE(0);
  if (computed !== stored) throw new LvmChecksumError(source, structure, offset, stored, computed);
}

/** A thin LV's one segment: virtual blocks of the pool's chunk size, mapped through the pool's btree. */
export class ThinTarget implements SegmentTarget {
  readonly below: readonly BlockSource[];

  constructor(
    readonly pool: ThinPoolMetadata,
    readonly data: BlockSource,
    readonly deviceId: number,
    /** Where unmapped blocks come from (an external origin LV), else zeros. */
    readonly externalOrigin?: BlockSource,
  ) {
    this.below = [pool.metadata, data, ...(externalOrigin ? [externalOrigin] : [])];
  }

  refresh(): void {
    this.pool.refresh();
  }

  async locate(offset: number, length: number): Promise<Run> {
    const chunk = this.pool.chunkSectors * SECTOR_SIZE;
    const vblock = Math.floor(offset / chunk);
    const within = offset - vblock * chunk;
    const run = Math.min(length, chunk - within);
    const dblock = await this.pool.lookup(this.deviceId, vblock);
    if (dblock === undefined) {
      const o = this.externalOrigin;
      if (o && offset < o.size) return { kind: 'data', source: o, offset, length: Math.min(run, o.size - offset) };
      return { kind: 'zero', length: run };
    }
    const at = dblock * BigInt(chunk) + BigInt(within);
    if (at + BigInt(run) > BigInt(this.data.size)) {
      throw new LvmCorruptError(this.pool.metadata.name, `thin pool ${this.pool.pool} block map of thin device ${this.deviceId}`, undefined, `virtual block ${vblock} maps to data block ${dblock}, past the end of the pool's data volume`);
    }
    return { kind: 'data', source: this.data, offset: Number(at), length: run };
  }
}

/** A factory for one segment mapper (one assembly of one VG): one metadata reader per pool, shared by its thin LVs. */
export function thinTargets(vg: string): ThinTargetFactory {
  const pools = new Map<BlockSource, ThinPoolMetadata>();
  return ({ segment, poolSegment, metadata, data, externalOrigin, pool }) => {
    let meta = pools.get(metadata);
    if (!meta) {
      meta = new ThinPoolMetadata(metadata, poolSegment.chunkSize, `${vg}/${pool.name}`);
      pools.set(metadata, meta);
    }
    return new ThinTarget(meta, data, segment.deviceId, externalOrigin);
  };
}
