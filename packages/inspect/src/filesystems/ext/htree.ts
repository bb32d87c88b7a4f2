/**
 * Lookup in a hashed (htree) directory without reading all of it, as
 * ext4's dx_probe does: hash the name, binary-search the index from the root
 * (block 0) down to a leaf, search that leaf, and continue into the next leaves
 * while the index says they hold the same hash (collisions). Anything the walk
 * does not understand (casefolded or encrypted names, siphash, a malformed
 * index) returns "fallback" so the caller scans the directory linearly.
 */
import { DX_HASH, dirHash } from './dirHash.ts';
import { parseEntries, verifyLeafTail, type RawDirEntry } from './directory.ts';
import { INODE_FLAGS, type Inode } from './inode.ts';
import { mapBlocks } from './mapping.ts';
import { COMPAT, INCOMPAT, hasCompat, hasIncompat } from './superblock.ts';
import type { ExtVolume } from './volume.ts';

const EXT2_FLAGS_UNSIGNED_HASH = 0x2;
const CASEFOLD_FL = 0x40000000;
/** The kernel reads at most this many leaves for one name (collision chains are short). */
const MAX_LEAVES = 64;

interface Frame {
  /** [hash, logical block] pairs; entry 0's hash is implicitly 0. */
  entries: [number, number][];
  at: number;
}

export type HtreeResult = { found: true; ino: number } | { found: false } | 'fallback';

export function usesHtree(vol: ExtVolume, dir: Inode): boolean {
  return (
    hasCompat(vol.sb, COMPAT.DIR_INDEX) &&
    (dir.i_flags & INODE_FLAGS.INDEX) !== 0 &&
    (dir.i_flags & (INODE_FLAGS.INLINE_DATA | INODE_FLAGS.ENCRYPT | CASEFOLD_FL)) === 0
  );
}

export async function htreeLookup(vol: ExtVolume, dir: Inode, name: Buffer): Promise<HtreeResult> {
  const bs = vol.blockSize;
  const dirBlocks = Math.ceil(dir.size / bs);
  const readLogical = async (lblk: number): Promise<{ data: Buffer; pblk: number } | undefined> => {
    if (lblk >= dirBlocks) return undefined;
    const [run] = await mapBlocks(vol, dir, lblk, 1);
    if (!run || run.pblk === undefined) return undefined;
    return { data: await vol.cache.read(run.pblk), pblk: run.pblk };
  };

  const root = await readLogical(0);
  if (!root) return 'fallback';
  const r = root.data;
  const infoLength = r.readUInt8(29);
  const levels = r.readUInt8(30);
  let version = r.readUInt8(28);
  const maxLevels = hasIncompat(vol.sb, INCOMPAT.LARGEDIR) ? 3 : 2;
  if (r.readUInt32LE(24) !== 0 || infoLength !== 8 || levels >= maxLevels) return 'fallback';
  if (version <= DX_HASH.TEA && vol.sb.s_flags & EXT2_FLAGS_UNSIGNED_HASH) version += 3;
  const seed = new Uint32Array(4);
  for (let i = 0; i < 4; i++) seed[i] = vol.sb.s_hash_seed.readUInt32LE(i * 4);
  const hash = dirHash(name, version, seed);
  if (hash === undefined) return 'fallback';

  const readNode = (data: Buffer, start: number): Frame | undefined => {
    const limit = data.readUInt16LE(start);
    const count = data.readUInt16LE(start + 2);
    if (count === 0 || count > limit || start + limit * 8 > data.length) return undefined;
    const entries: [number, number][] = [];
    for (let i = 0; i < count; i++) entries.push([i === 0 ? 0 : data.readUInt32LE(start + i * 8), data.readUInt32LE(start + i * 8 + 4) & 0x0fffffff]);
    // dx_probe's binary search: the last entry whose hash is <= ours.
    let lo = 1;
    let hi = count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (entries[mid][0] > hash) hi = mid - 1;
      else lo = mid + 1;
    }
    return { entries, at: lo - 1 };
  };

  const frames: Frame[] = [];
  const rootFrame = readNode(r, 24 + infoLength);
  if (!rootFrame) return 'fallback';
  frames.push(rootFrame);
  // Descend one level per indirect level, always taking the chosen entry.
  const descend = async (fromLevel: number, first: boolean): Promise<boolean> => {
    for (let level = fromLevel; level < levels; level++) {
      const parent = frames[level];
      const node = await readLogical(parent.entries[parent.at][1]);
      if (!node) return false;
      const f = readNode(node.data, 8);
      if (!f) return false;
      if (first) f.at = 0;
      frames[level + 1] = f;
    }
    return true;
  };
  if (!(await descend(0, false))) return 'fallback';

  for (let leaves = 0; leaves < MAX_LEAVES; leaves++) {
    const bottom = frames[levels];
    const leaf = await readLogical(bottom.entries[bottom.at][1]);
    if (!leaf) return 'fallback';
    if (vol.sb.metadataCsum) verifyLeafTail(vol, dir, leaf.data, leaf.pblk, bottom.entries[bottom.at][1]);
    const entries: RawDirEntry[] = [];
    parseEntries(vol, leaf.data, `directory inode ${dir.ino} block ${bottom.entries[bottom.at][1]}`, leaf.pblk * vol.blockSize, entries);
    for (const e of entries) if (e.name.equals(name)) return { found: true, ino: e.ino };
    // ext4_htree_next_block: step to the next index entry, climbing as needed.
    let level = levels;
    while (++frames[level].at >= frames[level].entries.length) {
      if (level === 0) return { found: false };
      level--;
    }
    const nextHash = frames[level].entries[frames[level].at][0];
    if ((nextHash & ~1) >>> 0 !== hash) return { found: false };
    if (!(await descend(level, true))) return 'fallback';
  }
  return 'fallback';
}
