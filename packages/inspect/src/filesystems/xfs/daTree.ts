/**
 * The hash-ordered "da" btree directories (leaf and node form) and
 * attribute forks (node form) share: node blocks hold (hashval, before)
 * pairs, where hashval is the largest hash under `before`; leaves are linked
 * left to right by `forw`. Looking up a hash descends to the first child
 * whose hashval is not smaller, as xfs_da3_node_lookup_int does, so the
 * leftmost leaf holding the hash is found; equal hashes may continue into
 * the next leaves. Node blocks are checked as xfs_da3_node_verify checks
 * them (magic, v5 header, level, entry count).
 */
import { readDaBlock, verifyV5Header, type DaBlock } from './daBlock.ts';
import type { ForkContext } from './bmap.ts';
import {
  DA3_NODE_HDR_LEN,
  DA_BLKINFO,
  DA_NODE_ENTRY_LEN,
  DA_NODE_HDR_LEN,
  XFS_DA3_NODE_MAGIC,
  XFS_DA_NODE_MAGIC,
  XFS_DA_NODE_MAXDEPTH,
} from './layout.ts';

export interface DaNode {
  level: number;
  entries: { hashval: number; before: number }[];
}

/** The 16-bit magic of a da block (in its blkinfo). */
export function daMagic(block: DaBlock): number {
  return block.buf.readUInt16BE(DA_BLKINFO.magic);
}

export function isNodeMagic(magic: number): boolean {
  return magic === XFS_DA_NODE_MAGIC || magic === XFS_DA3_NODE_MAGIC;
}

/** The v5 blkinfo checks shared by node, leaf and attribute-leaf blocks. */
export function verifyDa3Blkinfo(ctx: ForkContext, block: DaBlock, what: string): void {
  verifyV5Header(ctx.vol, block, ctx.inode.ino, what, { crc: DA_BLKINFO.crc, blkno: DA_BLKINFO.blkno, owner: DA_BLKINFO.owner, uuid: DA_BLKINFO.uuid });
}

export function parseDaNode(ctx: ForkContext, block: DaBlock, what: string): DaNode {
  const { vol } = ctx;
  const b = block.buf;
  const v5 = vol.sb.hasCrc;
  const bad = (detail: string) => vol.corrupt(what, block.byteOffset, detail);
  const magic = daMagic(block);
  if (magic !== (v5 ? XFS_DA3_NODE_MAGIC : XFS_DA_NODE_MAGIC)) throw bad(`bad node magic 0x${magic.toString(16)}`);
  if (v5) verifyDa3Blkinfo(ctx, block, what);
  const hdr = v5 ? DA3_NODE_HDR_LEN : DA_NODE_HDR_LEN;
  const count = b.readUInt16BE(hdr - (v5 ? 8 : 4));
  const level = b.readUInt16BE(hdr - (v5 ? 6 : 2));
  const max = Math.floor((b.length - hdr) / DA_NODE_ENTRY_LEN);
  if (level < 1 || level > XFS_DA_NODE_MAXDEPTH) throw bad(`node level ${level}`);
  if (count === 0 || count > max) throw bad(`${count} node entries (at most ${max} fit)`);
  const entries: DaNode['entries'] = [];
  for (let i = 0; i < count; i++) {
    entries.push({ hashval: b.readUInt32BE(hdr + i * DA_NODE_ENTRY_LEN), before: b.readUInt32BE(hdr + i * DA_NODE_ENTRY_LEN + 4) });
  }
  return { level, entries };
}

/** The child to descend for `hash`: the first entry whose hashval >= hash, else the last. */
export function nodeChildFor(node: DaNode, hash: number): number {
  let lo = 0;
  let hi = node.entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (node.entries[mid].hashval < hash) lo = mid + 1;
    else hi = mid;
  }
  return node.entries[Math.min(lo, node.entries.length - 1)].before;
}

/**
 * Descend from the block at `rootBlk` (a node or already a leaf) to the leaf
 * for `hash`; `leafMagics` are the leaf magics this tree may end in. Each
 * block is `fsbCount` filesystem blocks.
 */
export async function descendToLeaf(ctx: ForkContext, rootBlk: number, fsbCount: number, hash: number, leafMagics: readonly number[], what: string): Promise<{ block: DaBlock; dablk: number } | undefined> {
  let dablk = rootBlk;
  let expectLevel: number | undefined;
  for (let depth = 0; depth <= XFS_DA_NODE_MAXDEPTH; depth++) {
    const block = await readDaBlock(ctx, dablk, fsbCount, what);
    if (!block) {
      if (depth === 0) return undefined;
      throw ctx.vol.corrupt(what, undefined, `node pointer to block ${dablk}, which is a hole`);
    }
    const magic = daMagic(block);
    if (leafMagics.includes(magic)) {
      if (expectLevel !== undefined && expectLevel !== 0) throw ctx.vol.corrupt(what, block.byteOffset, `a leaf where a level ${expectLevel} node was expected`);
      return { block, dablk };
    }
    const node = parseDaNode(ctx, block, what);
    if (expectLevel !== undefined && node.level !== expectLevel) throw ctx.vol.corrupt(what, block.byteOffset, `node level ${node.level} where ${expectLevel} was expected`);
    expectLevel = node.level - 1;
    dablk = nodeChildFor(node, hash);
  }
  throw ctx.vol.corrupt(what, undefined, `the tree is deeper than ${XFS_DA_NODE_MAXDEPTH} levels`);
}

/** Follow a block's `forw` pointer (0 at the right end). */
export function forwPointer(block: DaBlock): number {
  return block.buf.readUInt32BE(DA_BLKINFO.forw);
}
