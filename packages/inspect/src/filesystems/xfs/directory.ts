/**
 * Directories in their four forms: short form (in the inode), block form
 * (one directory block holding entries and their hash index), leaf form
 * (data blocks plus one leaf block of hash-sorted pointers at 32 GiB into
 * the directory) and node form (data blocks, a da btree of leaf blocks, free
 * index blocks). Which of block or leaf/node a directory is follows the
 * kernel's test (xfs_dir2_isblock): the data fork ends after exactly one
 * directory block. Listing reads every data block in order, as readdir
 * does; a lookup in a leaf or node directory hashes the name and reads only
 * the leaf path and the data blocks its pointers name.
 */
import { lastMappedBlock, mapFork, type ForkContext } from './bmap.ts';
import { readDaBlock, type DaBlock } from './daBlock.ts';
import { asciiCiEqual, asciiCiHashName, daHashName } from './dahash.ts';
import { daMagic, descendToLeaf, forwPointer, verifyDa3Blkinfo } from './daTree.ts';
import { parseDataBlock, type LeafEntry } from './dirData.ts';
import { dirGeometry, type DirGeometry, type RawDirEntry } from './dirEntry.ts';
import { parseShortformDirectory } from './dirShortform.ts';
import { XfsError } from './errors.ts';
import type { Inode } from './inode.ts';
import { directoryTooLarge } from '../directoryLimit.ts';
import {
  DIR2_LEAF_ENTRY_LEN,
  DIR2_LEAF_HDR_LEN,
  DIR3_LEAF_HDR_LEN,
  FMT,
  XFS_DIR2_LEAF1_MAGIC,
  XFS_DIR2_LEAFN_MAGIC,
  XFS_DIR3_LEAF1_MAGIC,
  XFS_DIR3_LEAFN_MAGIC,
} from './layout.ts';
import type { XfsVolume } from './volume.ts';

export type DirectoryForm = 'shortform' | 'block' | 'leaf' | 'node';

function context(vol: XfsVolume, inode: Inode): ForkContext {
  return { vol, inode, fork: inode.data };
}

/** Which form a (non-local) directory is in. */
export async function directoryForm(vol: XfsVolume, inode: Inode): Promise<DirectoryForm> {
  if (inode.data.format === FMT.LOCAL) return 'shortform';
  const key = `form:${inode.ino}`;
  const cached = vol.parsedDirBlocks.get(key) as { form: DirectoryForm; length: number } | undefined;
  if (cached) return cached.form;
  const form = await findForm(vol, inode);
  vol.parsedDirBlocks.set(key, { form, length: 0 } as { length: number });
  return form;
}

async function findForm(vol: XfsVolume, inode: Inode): Promise<DirectoryForm> {
  const ctx = context(vol, inode);
  const geo = dirGeometry(vol);
  const eof = await lastMappedBlock(ctx);
  if (eof * vol.blockSize === geo.blockSize) {
    if (inode.di_size !== geo.blockSize) throw vol.corrupt(`directory inode ${inode.ino}`, inode.byteOffset, `one directory block but a size of ${inode.di_size}`);
    return 'block';
  }
  const leaf = await readDaBlock(ctx, geo.leafBlk, geo.fsbCount, `leaf block of directory inode ${inode.ino}`);
  if (!leaf) throw vol.corrupt(`directory inode ${inode.ino}`, inode.byteOffset, 'more than one directory block but no leaf block');
  const magic = daMagic(leaf);
  return magic === XFS_DIR2_LEAF1_MAGIC || magic === XFS_DIR3_LEAF1_MAGIC ? 'leaf' : 'node';
}

/** Every entry of a directory ("." and ".." included for block, leaf and node forms), in on-disk order. */
export async function readDirectory(vol: XfsVolume, inode: Inode): Promise<{ form: DirectoryForm; entries: RawDirEntry[]; parent?: bigint }> {
  const form = await directoryForm(vol, inode);
  if (form === 'shortform') {
    const sf = parseShortformDirectory(vol, inode);
    return { form, entries: sf.entries, parent: sf.parent };
  }
  const ctx = context(vol, inode);
  const geo = dirGeometry(vol);
  if (form === 'block') {
    const block = await readDaBlock(ctx, 0, geo.fsbCount, `directory block of inode ${inode.ino}`);
    if (!block) throw vol.corrupt(`directory inode ${inode.ino}`, inode.byteOffset, 'its only block is a hole');
    return { form, entries: parseDataBlock(vol, block, inode.ino, 'block', `directory block of inode ${inode.ino}`).entries };
  }
  const entries: RawDirEntry[] = [];
  const maxBlocks = Math.floor(vol.limits.maxDirectoryBytes / geo.blockSize);
  let blocks = 0;
  for (const dablk of await dataBlockNumbers(ctx, geo)) {
    if (++blocks > maxBlocks) {
      throw new XfsError('EFBIG', vol.image, `directory inode ${inode.ino} has more than ${maxBlocks} data blocks, over the ${vol.limits.maxDirectoryBytes}-byte limit`);
    }
    const what = `directory data block ${dablk / geo.fsbCount} of inode ${inode.ino}`;
    const block = await readDaBlock(ctx, dablk, geo.fsbCount, what);
    if (!block) continue;
    for (const e of parseDataBlock(vol, block, inode.ino, 'data', what).entries) {
      entries.push(e);
      if (entries.length > vol.limits.maxDirectoryEntries) {
        throw directoryTooLarge(vol.image, `directory inode ${inode.ino}`, vol.limits.maxDirectoryEntries);
      }
    }
  }
  return { form, entries };
}

/** The first filesystem block of every mapped directory block in the data space, in order. */
async function dataBlockNumbers(ctx: ForkContext, geo: DirGeometry): Promise<number[]> {
  const records = await mapFork(ctx, 0, geo.leafBlk);
  const out: number[] = [];
  const maxBlocks = Math.floor(ctx.vol.limits.maxDirectoryBytes / geo.blockSize);
  let last = -1;
  for (const r of records) {
    const end = Math.min(r.startoff + r.blockcount, geo.leafBlk);
    for (let b = Math.floor(r.startoff / geo.fsbCount) * geo.fsbCount; b < end; b += geo.fsbCount) {
      if (b <= last) continue;
      out.push(b);
      last = b;
      if (out.length > maxBlocks) return out;
    }
  }
  return out;
}

interface LeafBlock {
  entries: LeafEntry[];
  forw: number;
}

function parseDirLeaf(ctx: ForkContext, block: DaBlock, what: string): LeafBlock {
  const { vol } = ctx;
  const b = block.buf;
  const v5 = vol.sb.hasCrc;
  const bad = (detail: string) => vol.corrupt(what, block.byteOffset, detail);
  const magic = daMagic(block);
  const leaf1 = v5 ? XFS_DIR3_LEAF1_MAGIC : XFS_DIR2_LEAF1_MAGIC;
  const leafn = v5 ? XFS_DIR3_LEAFN_MAGIC : XFS_DIR2_LEAFN_MAGIC;
  if (magic !== leaf1 && magic !== leafn) throw bad(`bad leaf magic 0x${magic.toString(16)}`);
  if (v5) verifyDa3Blkinfo(ctx, block, what);
  const hdr = v5 ? DIR3_LEAF_HDR_LEN : DIR2_LEAF_HDR_LEN;
  const countOff = v5 ? 56 : 12;
  const count = b.readUInt16BE(countOff);
  const stale = b.readUInt16BE(countOff + 2);
  let end = b.length;
  if (magic === leaf1) {
    const bestcount = b.readUInt32BE(b.length - 4);
    end = b.length - 4 - 2 * bestcount;
  }
  if (stale > count || hdr + count * DIR2_LEAF_ENTRY_LEN > end) throw bad(`${count} leaf entries (${stale} stale) do not fit the block`);
  const entries: LeafEntry[] = [];
  let prev = 0;
  for (let i = 0; i < count; i++) {
    const hashval = b.readUInt32BE(hdr + i * DIR2_LEAF_ENTRY_LEN);
    if (hashval < prev) throw bad(`leaf entry ${i} is out of hash order`);
    prev = hashval;
    entries.push({ hashval, address: b.readUInt32BE(hdr + i * DIR2_LEAF_ENTRY_LEN + 4) });
  }
  return { entries, forw: magic === leafn ? forwPointer(block) : 0 };
}

export interface NameMatcher {
  hash: number;
  matches(stored: Buffer): boolean;
}

/** How directory `name` hashes and compares on this filesystem (case-folded on ascii-ci ones). */
export function nameMatcher(vol: XfsVolume, name: Buffer): NameMatcher {
  if (vol.sb.hasAsciiCi) return { hash: asciiCiHashName(name), matches: (s) => asciiCiEqual(s, name) };
  return { hash: daHashName(name), matches: (s) => s.equals(name) };
}

/** The first index of an entry with hashval >= hash. */
function lowerBound(entries: readonly LeafEntry[], hash: number): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (entries[mid].hashval < hash) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Look `name` up in a leaf- or node-form directory through its hash index.
 * Returns the entry's inode number, or undefined.
 */
export async function lookupHashed(vol: XfsVolume, inode: Inode, name: Buffer): Promise<bigint | undefined> {
  const ctx = context(vol, inode);
  const geo = dirGeometry(vol);
  const m = nameMatcher(vol, name);
  const what = `leaf block of directory inode ${inode.ino}`;
  const v5 = vol.sb.hasCrc;
  const leafMagics = v5 ? [XFS_DIR3_LEAF1_MAGIC, XFS_DIR3_LEAFN_MAGIC] : [XFS_DIR2_LEAF1_MAGIC, XFS_DIR2_LEAFN_MAGIC];
  const found = await descendToLeaf(ctx, geo.leafBlk, geo.fsbCount, m.hash, leafMagics, what);
  if (!found) throw vol.corrupt(`directory inode ${inode.ino}`, inode.byteOffset, 'it has no leaf block');
  let dablk = found.dablk;
  let leaf = await leafAt(ctx, geo, dablk, what, found.block);
  let caseMatch: bigint | undefined;
  const visited = new Set<number>([dablk]);
  for (;;) {
    let i = lowerBound(leaf.entries, m.hash);
    for (; i < leaf.entries.length && leaf.entries[i].hashval === m.hash; i++) {
      const address = leaf.entries[i].address;
      if (address === 0) continue; // stale
      const entry = await entryAt(ctx, geo, address);
      if (entry.name.equals(name)) return entry.ino;
      if (caseMatch === undefined && m.matches(entry.name)) caseMatch = entry.ino;
    }
    // Equal hashes may go on in the next leaf only when this one ended on them.
    if (i < leaf.entries.length || leaf.forw === 0) return caseMatch;
    const from = leaf.byteOffset;
    dablk = leaf.forw;
    if (visited.has(dablk) || visited.size > 1024) throw vol.corrupt(what, from, `leaf sibling pointers loop at block ${dablk}`);
    visited.add(dablk);
    leaf = await leafAt(ctx, geo, dablk, what);
    if (leaf.entries.length && leaf.entries[0].hashval < m.hash) throw vol.corrupt(what, leaf.byteOffset, 'leaf blocks are out of hash order');
  }
}

/** A data block's entries by their byte offset (parsed once per volume, through its cache). */
async function dataBlockEntries(ctx: ForkContext, geo: DirGeometry, db: number): Promise<Map<number, RawDirEntry>> {
  const { vol, inode } = ctx;
  const key = `data:${inode.ino}:${db}`;
  const cached = vol.parsedDirBlocks.get(key) as (Map<number, RawDirEntry> & { length: number }) | undefined;
  if (cached) return cached;
  const what = `directory data block ${db} of inode ${inode.ino}`;
  const block = await readDaBlock(ctx, db * geo.fsbCount, geo.fsbCount, what);
  if (!block) throw vol.corrupt(`leaf block of directory inode ${inode.ino}`, undefined, `a leaf entry points into data block ${db}, a hole`);
  const byOffset = new Map<number, RawDirEntry>() as Map<number, RawDirEntry> & { length: number };
  for (const e of parseDataBlock(vol, block, inode.ino, 'data', what).entries) byOffset.set(e.offset!, e);
  byOffset.length = byOffset.size;
  vol.parsedDirBlocks.set(key, byOffset);
  return byOffset;
}

/** The data entry a leaf pointer names. */
async function entryAt(ctx: ForkContext, geo: DirGeometry, address: number): Promise<RawDirEntry> {
  const { vol, inode } = ctx;
  const byte = address * 8;
  const db = Math.floor(byte / geo.blockSize);
  const off = byte % geo.blockSize;
  if (db * geo.fsbCount >= geo.leafBlk) throw vol.corrupt(`leaf block of directory inode ${inode.ino}`, undefined, `a leaf entry points at byte ${byte}, outside the data space`);
  const entry = (await dataBlockEntries(ctx, geo, db)).get(off);
  if (!entry) throw vol.corrupt(`directory data block ${db} of inode ${inode.ino}`, undefined, `a leaf entry points at byte ${off}, where no entry starts`);
  return entry;
}

/** A leaf block of a hashed directory, parsed once per volume. */
async function leafAt(ctx: ForkContext, geo: DirGeometry, dablk: number, what: string, block?: DaBlock): Promise<LeafBlock & { byteOffset: number }> {
  const { vol, inode } = ctx;
  const key = `leaf:${inode.ino}:${dablk}`;
  const cached = vol.parsedDirBlocks.get(key) as (LeafBlock & { byteOffset: number; length: number }) | undefined;
  if (cached) return cached;
  block ??= await readDaBlock(ctx, dablk, geo.fsbCount, what);
  if (!block) throw vol.corrupt(what, undefined, `leaf block ${dablk} is a hole`);
  const leaf = { ...parseDirLeaf(ctx, block, what), byteOffset: block.byteOffset, length: 0 };
  leaf.length = leaf.entries.length;
  vol.parsedDirBlocks.set(key, leaf);
  return leaf;
}

/** Look `name` up among already-read entries (short-form and block-form directories). */
export function lookupInEntries(vol: XfsVolume, entries: readonly RawDirEntry[], name: Buffer): bigint | undefined {
  const exact = entries.find((e) => e.name.equals(name));
  if (exact) return exact.ino;
  if (!vol.sb.hasAsciiCi) return undefined;
  return entries.find((e) => asciiCiEqual(e.name, name))?.ino;
}
