/**
 * The ext4 extent tree: a header (magic 0xf30a, entries, max, depth) then
 * index entries (internal nodes) or extents (leaves). The root is the inode's
 * i_block; other nodes are blocks with a crc32c tail under metadata_csum.
 * Hostile trees cannot loop: every child must have exactly depth - 1, the
 * depth is at most 5, keys must increase, and children never reach before
 * their parent's key.
 */
import { crc32c } from './checksum.ts';
import { ExtChecksumError } from './errors.ts';
import type { Inode } from './inode.ts';
import type { BlockRun } from './mapping.ts';
import type { ExtVolume } from './volume.ts';

export const EXT4_EXT_MAGIC = 0xf30a;
export const EXT4_MAX_EXTENT_DEPTH = 5;
const HEADER_SIZE = 12;
const ENTRY_SIZE = 12;
/** ee_len above this marks an unwritten (preallocated) extent that reads as zeros. */
const EXT_INIT_MAX_LEN = 32768;

interface NodeHeader {
  entries: number;
  max: number;
  depth: number;
}

function parseHeader(vol: ExtVolume, node: Buffer, where: string, offset: number | undefined, expectedDepth: number | undefined, maxEntries: number): NodeHeader {
  const magic = node.readUInt16LE(0);
  if (magic !== EXT4_EXT_MAGIC) throw vol.corrupt(where, offset, `bad extent header magic 0x${magic.toString(16)}`);
  const entries = node.readUInt16LE(2);
  const max = node.readUInt16LE(4);
  const depth = node.readUInt16LE(6);
  if (max === 0 || max > maxEntries) throw vol.corrupt(where, offset, `eh_max ${max} is invalid (at most ${maxEntries} fit)`);
  if (entries > max) throw vol.corrupt(where, offset, `eh_entries ${entries} exceeds eh_max ${max}`);
  if (depth > EXT4_MAX_EXTENT_DEPTH) throw vol.corrupt(where, offset, `eh_depth ${depth} exceeds the maximum of ${EXT4_MAX_EXTENT_DEPTH}`);
  if (expectedDepth !== undefined && depth !== expectedDepth) throw vol.corrupt(where, offset, `eh_depth ${depth}, expected ${expectedDepth}`);
  if (entries === 0 && depth > 0) throw vol.corrupt(where, offset, 'an index node with no entries');
  return { entries, max, depth };
}

function verifyExtentBlock(vol: ExtVolume, inode: Inode, node: Buffer, header: NodeHeader, block: number): void {
  if (!vol.sb.metadataCsum) return;
  const tail = HEADER_SIZE + header.max * ENTRY_SIZE;
  if (tail + 4 > node.length) throw vol.corrupt(`extent block ${block} of inode ${inode.ino}`, block * vol.blockSize, `eh_max ${header.max} leaves no room for the checksum tail`);
  const computed = crc32c(inode.csumSeed, node, 0, tail);
  const stored = node.readUInt32LE(tail);
  if (computed !== stored) {
    throw new ExtChecksumError(vol.image, `extent block ${block} of inode ${inode.ino}`, block * vol.blockSize, computed, stored, { retryable: vol.retryable });
  }
}

/** Extents of `inode` overlapping logical blocks [lblk, lblk + count), in order. */
export async function mapExtents(vol: ExtVolume, inode: Inode, lblk: number, count: number): Promise<BlockRun[]> {
  const out: BlockRun[] = [];
  const root = inode.i_block;
  const where = `extent tree root of inode ${inode.ino}`;
  const header = parseHeader(vol, root, where, undefined, undefined, (root.length - HEADER_SIZE) / ENTRY_SIZE);
  // Each node visited costs one block read; a sane tree needs few per request, a hostile one is cut off.
  const budget = { nodes: 64 + 4 * count };
  await walk(vol, inode, root, header, where, undefined, 0, lblk, lblk + count, out, budget);
  return out;
}

async function walk(
  vol: ExtVolume,
  inode: Inode,
  node: Buffer,
  header: NodeHeader,
  where: string,
  offset: number | undefined,
  minKey: number,
  start: number,
  end: number,
  out: BlockRun[],
  budget: { nodes: number },
): Promise<void> {
  let prevKey = -1;
  if (header.depth === 0) {
    for (let i = 0; i < header.entries; i++) {
      const e = HEADER_SIZE + i * ENTRY_SIZE;
      const ee_block = node.readUInt32LE(e);
      let ee_len = node.readUInt16LE(e + 4);
      const unwritten = ee_len > EXT_INIT_MAX_LEN;
      if (unwritten) ee_len -= EXT_INIT_MAX_LEN;
      const ee_start = node.readUInt16LE(e + 6) * 2 ** 32 + node.readUInt32LE(e + 8);
      if (ee_len === 0) throw vol.corrupt(where, offset, `extent ${i} has length 0`);
      if (ee_block < minKey || ee_block <= prevKey) throw vol.corrupt(where, offset, `extent ${i} (logical block ${ee_block}) is out of order`);
      if (!vol.validRange(ee_start, ee_len)) throw vol.corrupt(where, offset, `extent ${i} points at blocks ${ee_start}..${ee_start + ee_len - 1}, outside the filesystem`);
      prevKey = ee_block + ee_len - 1;
      if (ee_block >= end) break;
      if (ee_block + ee_len <= start) continue;
      out.push(unwritten ? { lblk: ee_block, length: ee_len, pblk: undefined, unwritten: true, allocatedPblk: ee_start } : { lblk: ee_block, length: ee_len, pblk: ee_start });
    }
    return;
  }
  for (let i = 0; i < header.entries; i++) {
    const e = HEADER_SIZE + i * ENTRY_SIZE;
    const ei_block = node.readUInt32LE(e);
    if (ei_block < minKey || ei_block <= prevKey) throw vol.corrupt(where, offset, `index ${i} (logical block ${ei_block}) is out of order`);
    prevKey = ei_block;
    const nextKey = i + 1 < header.entries ? node.readUInt32LE(e + ENTRY_SIZE) : Infinity;
    if (ei_block >= end) break;
    if (nextKey <= start) continue;
    const child = node.readUInt32LE(e + 4) + node.readUInt16LE(e + 8) * 2 ** 32;
    if (!vol.validRange(child)) throw vol.corrupt(where, offset, `index ${i} points at block ${child}, outside the filesystem`);
    if (--budget.nodes < 0) throw vol.corrupt(where, offset, 'the extent tree is too large for the range asked (hostile or corrupt tree)');
    const data = await vol.cache.read(child);
    const childWhere = `extent block ${child} of inode ${inode.ino}`;
    const childOffset = child * vol.blockSize;
    const childHeader = parseHeader(vol, data, childWhere, childOffset, header.depth - 1, Math.floor((vol.blockSize - HEADER_SIZE) / ENTRY_SIZE));
    verifyExtentBlock(vol, inode, data, childHeader, child);
    await walk(vol, inode, data, childHeader, childWhere, childOffset, ei_block, start, end, out, budget);
  }
}
