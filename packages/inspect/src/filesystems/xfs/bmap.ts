/**
 * The block map of an inode fork: extent records (startoff, startblock,
 * blockcount and the unwritten flag packed into 128 bits) kept in the inode
 * (extents format) or in a bmap btree rooted in the inode (btree format).
 * A range of the file is mapped by descending the btree by its keys to the
 * leaf holding the first block and walking right siblings only as far as the
 * range goes, so a read of a huge fragmented file costs a few cached blocks,
 * not the whole map. Every record is checked as the kernel checks it
 * (xfs_bmap_validate_extent), records must be in order without overlap, and
 * btree blocks are checked (magic, level, record count, and on v5 CRC,
 * address, owner and UUID).
 */
import type { BlockRun } from '../runs.ts';
import { bmdrMaxRecs, MAX_BMBT_LEVELS, type Fork, type Inode } from './inode.ts';
import {
  BMBT_KEY_LEN,
  BMBT_PTR_LEN,
  BMBT_REC_LEN,
  BMDR_HEADER_LEN,
  BTREE,
  BTREE_LBLOCK_CRC_LEN,
  BTREE_LBLOCK_LEN,
  FMT,
  XFS_BMAP_CRC_MAGIC,
  XFS_BMAP_MAGIC,
} from './layout.ts';
import type { XfsVolume } from './volume.ts';

/** One extent of a fork, in filesystem blocks. */
export interface BmbtRecord {
  startoff: number;
  /** File-system block number (AG number in the high bits). */
  startblock: number;
  blockcount: number;
  unwritten: boolean;
}

/** The largest file offset (in blocks) a record may reach: 54-bit startoff plus a 21-bit length. */
const MAX_FILEOFF = 2 ** 54 - 1 + (2 ** 21 - 1);
const NULLFSBLOCK = 0xffffffffffffffffn;

/** Decode the 16-byte record at `off`. */
export function decodeBmbtRecord(buf: Buffer, off: number): BmbtRecord {
  const hi0 = buf.readUInt32BE(off);
  const lo0 = buf.readUInt32BE(off + 4);
  const hi1 = buf.readUInt32BE(off + 8);
  const lo1 = buf.readUInt32BE(off + 12);
  return {
    unwritten: hi0 >>> 31 === 1,
    startoff: (hi0 & 0x7fffffff) * 2 ** 23 + (lo0 >>> 9),
    startblock: (lo0 & 0x1ff) * 2 ** 43 + hi1 * 2 ** 11 + (lo1 >>> 21),
    blockcount: lo1 & 0x1fffff,
  };
}

export interface ForkContext {
  vol: XfsVolume;
  inode: Inode;
  fork: Fork;
}

function forkName(fork: Fork): string {
  return fork.which === 'data' ? 'data fork' : 'attribute fork';
}

/** xfs_bmap_validate_extent: a non-empty extent inside one AG and inside the file offset space; no unwritten attribute extents. */
function validateRecord(ctx: ForkContext, r: BmbtRecord, where: string, offset: number | undefined): void {
  const bad = (detail: string) => ctx.vol.corrupt(where, offset, detail);
  if (r.blockcount === 0) throw bad(`an extent of 0 blocks at file block ${r.startoff}`);
  if (r.startoff + r.blockcount > MAX_FILEOFF) throw bad(`an extent at file block ${r.startoff} runs past the largest file offset`);
  if (!ctx.vol.validFsbRange(r.startblock, r.blockcount)) throw bad(`an extent of ${r.blockcount} blocks at block ${r.startblock} lies outside the filesystem or crosses an AG`);
  if (r.unwritten && ctx.fork.which !== 'data') throw bad('an unwritten extent in the attribute fork');
}

/**
 * The records of a fork that overlap file blocks [first, first + count), in
 * order. Extents format: from the inode; btree format: from the btree.
 */
export async function mapFork(ctx: ForkContext, first: number, count: number): Promise<BmbtRecord[]> {
  const end = first + count;
  if (ctx.fork.format === FMT.EXTENTS) {
    const all = extentsFromInode(ctx);
    return all.filter((r) => r.startoff < end && r.startoff + r.blockcount > first);
  }
  if (ctx.fork.format === FMT.BTREE) return mapBtree(ctx, first, end);
  throw ctx.vol.corrupt(`inode ${ctx.inode.ino}`, ctx.inode.byteOffset, `its ${forkName(ctx.fork)} (format ${ctx.fork.format}) has no block map`);
}

/** Every record of an extents-format fork. */
export function extentsFromInode(ctx: ForkContext): BmbtRecord[] {
  const { fork, inode } = ctx;
  const where = `${forkName(fork)} of inode ${inode.ino}`;
  const out: BmbtRecord[] = [];
  let prevEnd = 0;
  for (let i = 0; i < fork.nextents; i++) {
    const r = decodeBmbtRecord(fork.bytes, i * BMBT_REC_LEN);
    validateRecord(ctx, r, where, inode.byteOffset);
    if (r.startoff < prevEnd) throw ctx.vol.corrupt(where, inode.byteOffset, `extent ${i} at file block ${r.startoff} overlaps or precedes the one before`);
    prevEnd = r.startoff + r.blockcount;
    out.push(r);
  }
  return out;
}

interface BtreeNodeView {
  level: number;
  numrecs: number;
  /** Key i (startoff of the subtree). */
  key(i: number): number;
  /** Child pointer i (a file-system block number). */
  ptr(i: number): bigint;
}

function rootView(ctx: ForkContext): BtreeNodeView {
  const b = ctx.fork.bytes;
  const maxrecs = bmdrMaxRecs(b.length);
  return {
    level: b.readUInt16BE(0),
    numrecs: b.readUInt16BE(2),
    key: (i) => readKey(b, BMDR_HEADER_LEN + i * BMBT_KEY_LEN),
    ptr: (i) => b.readBigUInt64BE(BMDR_HEADER_LEN + maxrecs * BMBT_KEY_LEN + i * BMBT_PTR_LEN),
  };
}

function readKey(b: Buffer, off: number): number {
  return b.readUInt32BE(off) * 2 ** 32 + b.readUInt32BE(off + 4);
}

interface LoadedBlock {
  buf: Buffer;
  linear: number;
  level: number;
  numrecs: number;
  rightsib: bigint;
  hdr: number;
}

/** Read and check one bmbt block at file-system block `fsbno`, expected at `level`. */
async function loadBtreeBlock(ctx: ForkContext, fsbno: bigint, level: number): Promise<LoadedBlock> {
  const { vol, inode } = ctx;
  const where = `bmap btree block of the ${forkName(ctx.fork)} of inode ${inode.ino}`;
  const linear = fsbno <= BigInt(Number.MAX_SAFE_INTEGER) ? vol.fsbToLinear(Number(fsbno)) : undefined;
  if (linear === undefined) throw vol.corrupt(where, undefined, `pointer ${fsbno} is outside the filesystem`);
  const byteOffset = linear * vol.blockSize;
  const buf = await vol.readBlock(linear);
  const bad = (detail: string) => vol.corrupt(where, byteOffset, detail);
  const magic = buf.readUInt32BE(BTREE.bb_magic);
  const crc = vol.sb.hasCrc;
  if (magic !== (crc ? XFS_BMAP_CRC_MAGIC : XFS_BMAP_MAGIC)) throw bad(`bad magic 0x${magic.toString(16)}`);
  if (crc) {
    vol.verifyCrc(buf, BTREE.l_crc, where, byteOffset);
    if (buf.readBigUInt64BE(BTREE.l_blkno) !== BigInt(linear * vol.bbPerBlock)) throw bad(`it records disk address ${buf.readBigUInt64BE(BTREE.l_blkno)}, not its own`);
    if (buf.readBigUInt64BE(BTREE.l_owner) !== BigInt(inode.ino)) throw bad(`it belongs to inode ${buf.readBigUInt64BE(BTREE.l_owner)}`);
    if (!buf.subarray(BTREE.l_uuid, BTREE.l_uuid + 16).equals(vol.sb.metaUuid)) throw bad('its UUID is not the filesystem\'s');
  }
  const hdr = crc ? BTREE_LBLOCK_CRC_LEN : BTREE_LBLOCK_LEN;
  const blockLevel = buf.readUInt16BE(BTREE.bb_level);
  const numrecs = buf.readUInt16BE(BTREE.bb_numrecs);
  if (blockLevel !== level) throw bad(`level ${blockLevel} where level ${level} was expected`);
  const maxrecs = Math.floor((vol.blockSize - hdr) / (level === 0 ? BMBT_REC_LEN : BMBT_KEY_LEN + BMBT_PTR_LEN));
  if (numrecs === 0 || numrecs > maxrecs) throw bad(`${numrecs} records (at most ${maxrecs} fit)`);
  return { buf, linear, level: blockLevel, numrecs, rightsib: buf.readBigUInt64BE(BTREE.l_rightsib), hdr };
}

function blockView(ctx: ForkContext, b: LoadedBlock): BtreeNodeView {
  const maxrecs = Math.floor((ctx.vol.blockSize - b.hdr) / (BMBT_KEY_LEN + BMBT_PTR_LEN));
  return {
    level: b.level,
    numrecs: b.numrecs,
    key: (i) => readKey(b.buf, b.hdr + i * BMBT_KEY_LEN),
    ptr: (i) => b.buf.readBigUInt64BE(b.hdr + maxrecs * BMBT_KEY_LEN + i * BMBT_PTR_LEN),
  };
}

/** The index of the last key <= `target` (0 when every key is larger). */
function childFor(node: BtreeNodeView, target: number): number {
  let lo = 0;
  let hi = node.numrecs - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (node.key(mid) <= target) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

async function mapBtree(ctx: ForkContext, first: number, end: number): Promise<BmbtRecord[]> {
  const { vol, inode } = ctx;
  const where = `${forkName(ctx.fork)} of inode ${inode.ino}`;
  let node = rootView(ctx);
  let budget = vol.limits.maxBtreeBlocksPerMap;
  let leaf: LoadedBlock | undefined;
  while (node.level > 0) {
    const i = childFor(node, first);
    if (--budget < 0) throw vol.corrupt(where, undefined, 'the bmap btree is larger than the mapping budget allows');
    const child = await loadBtreeBlock(ctx, node.ptr(i), node.level - 1);
    if (child.level === 0) {
      leaf = child;
      break;
    }
    node = blockView(ctx, child);
  }
  if (!leaf) throw vol.corrupt(where, inode.byteOffset, 'the btree root is at level 0');

  const out: BmbtRecord[] = [];
  let prevEnd = -1;
  for (;;) {
    const leafWhere = `bmap btree leaf of the ${forkName(ctx.fork)} of inode ${inode.ino}`;
    const leafOffset = leaf.linear * vol.blockSize;
    let lastEnd = 0;
    for (let i = 0; i < leaf.numrecs; i++) {
      const r = decodeBmbtRecord(leaf.buf, leaf.hdr + i * BMBT_REC_LEN);
      validateRecord(ctx, r, leafWhere, leafOffset);
      if (r.startoff < prevEnd) throw vol.corrupt(leafWhere, leafOffset, `the extent at file block ${r.startoff} overlaps or precedes the one before`);
      prevEnd = r.startoff + r.blockcount;
      lastEnd = prevEnd;
      if (r.startoff < end && r.startoff + r.blockcount > first) out.push(r);
      if (r.startoff >= end) return out;
    }
    if (lastEnd >= end || leaf.rightsib === NULLFSBLOCK) return out;
    if (--budget < 0) throw vol.corrupt(where, undefined, 'the bmap btree is larger than the mapping budget allows');
    // Ordering of startoff across siblings (checked above) also rules out a sibling cycle.
    leaf = await loadBtreeBlock(ctx, leaf.rightsib, 0);
  }
}

/** The file block just past the last extent of a fork (xfs_bmap_last_offset); 0 for an empty fork. */
export async function lastMappedBlock(ctx: ForkContext): Promise<number> {
  if (ctx.fork.format === FMT.EXTENTS) {
    const all = extentsFromInode(ctx);
    const last = all[all.length - 1];
    return last ? last.startoff + last.blockcount : 0;
  }
  if (ctx.fork.format !== FMT.BTREE) throw ctx.vol.corrupt(`inode ${ctx.inode.ino}`, ctx.inode.byteOffset, `its ${forkName(ctx.fork)} (format ${ctx.fork.format}) has no block map`);
  let node = rootView(ctx);
  for (;;) {
    const child = await loadBtreeBlock(ctx, node.ptr(node.numrecs - 1), node.level - 1);
    if (child.level === 0) {
      const r = decodeBmbtRecord(child.buf, child.hdr + (child.numrecs - 1) * BMBT_REC_LEN);
      validateRecord(ctx, r, `bmap btree leaf of the ${forkName(ctx.fork)} of inode ${ctx.inode.ino}`, child.linear * ctx.vol.blockSize);
      return r.startoff + r.blockcount;
    }
    node = blockView(ctx, child);
  }
}

/** Runs (linear physical blocks, holes as undefined) of file blocks [first, first + count) from a fork's records. */
export function recordsToRuns(vol: XfsVolume, records: readonly BmbtRecord[]): BlockRun[] {
  return records.map((r) => {
    const linear = vol.fsbToLinear(r.startblock)!;
    return r.unwritten ? { lblk: r.startoff, length: r.blockcount, pblk: undefined, unwritten: true } : { lblk: r.startoff, length: r.blockcount, pblk: linear };
  });
}
