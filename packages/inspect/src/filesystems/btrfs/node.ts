/**
 * Tree blocks (btrfs_header + items): leaves hold items (key, offset, size
 * into the block), nodes hold key pointers (key, child logical address,
 * child generation). A block is checked before anything reads it, as the
 * kernel's tree-checker does: checksum, its own address, the filesystem's
 * fsid, level and generation as the parent promised, item counts that fit,
 * keys strictly ascending, leaf data packed back to front without overlap.
 */
import { compareKeys, formatKey, readKey, type Key } from './key.ts';
import { HEADER, KEY_PTR_SIZE, LEAF_ITEM_SIZE } from './layout.ts';

export interface LeafItem {
  key: Key;
  /** Byte offset of the item's data in the block. */
  dataStart: number;
  size: number;
}

export interface KeyPtr {
  key: Key;
  blockptr: bigint;
  generation: bigint;
}

export interface TreeBlock {
  bytenr: bigint;
  generation: bigint;
  owner: bigint;
  level: number;
  buf: Buffer;
  /** Leaves only. */
  items: LeafItem[];
  /** Nodes only. */
  ptrs: KeyPtr[];
}

/** Throws a string saying what is wrong (the caller wraps it in a BtrfsCorruptError with the block's address). */
export function parseTreeBlock(buf: Buffer, nodesize: number): TreeBlock {
  const level = buf[HEADER.level];
  const nritems = buf.readUInt32LE(HEADER.nritems);
  const block: TreeBlock = {
    bytenr: buf.readBigUInt64LE(HEADER.bytenr),
    generation: buf.readBigUInt64LE(HEADER.generation),
    owner: buf.readBigUInt64LE(HEADER.owner),
    level,
    buf,
    items: [],
    ptrs: [],
  };
  if (level > 7) throw new TreeBlockProblem(`level ${level} is above 7`);
  const room = nodesize - HEADER.size;
  if (level === 0) {
    if (nritems * LEAF_ITEM_SIZE > room) throw new TreeBlockProblem(`${nritems} items cannot fit in a leaf`);
    let dataEnd = room;
    const headersEnd = nritems * LEAF_ITEM_SIZE;
    let prev: Key | undefined;
    for (let i = 0; i < nritems; i++) {
      const at = HEADER.size + i * LEAF_ITEM_SIZE;
      const key = readKey(buf, at);
      const offset = buf.readUInt32LE(at + 17);
      const size = buf.readUInt32LE(at + 21);
      if (prev && compareKeys(prev, key) >= 0) throw new TreeBlockProblem(`item ${i} key ${formatKey(key)} is not above item ${i - 1} key ${formatKey(prev)}`);
      // Items' data are packed from the end of the block towards the item headers, in item order.
      if (offset + size !== dataEnd) throw new TreeBlockProblem(`item ${i} data [${offset}, ${offset + size}) does not end where item ${i - 1}'s begins (${dataEnd})`);
      if (offset < headersEnd) throw new TreeBlockProblem(`item ${i} data at ${offset} overlaps the item headers`);
      dataEnd = offset;
      block.items.push({ key, dataStart: HEADER.size + offset, size });
      prev = key;
    }
  } else {
    if (nritems === 0) throw new TreeBlockProblem('a node with no key pointers');
    if (nritems * KEY_PTR_SIZE > room) throw new TreeBlockProblem(`${nritems} key pointers cannot fit in a node`);
    let prev: Key | undefined;
    for (let i = 0; i < nritems; i++) {
      const at = HEADER.size + i * KEY_PTR_SIZE;
      const key = readKey(buf, at);
      if (prev && compareKeys(prev, key) >= 0) throw new TreeBlockProblem(`key pointer ${i} key ${formatKey(key)} is not above pointer ${i - 1} key ${formatKey(prev)}`);
      block.ptrs.push({ key, blockptr: buf.readBigUInt64LE(at + 17), generation: buf.readBigUInt64LE(at + 25) });
      prev = key;
    }
  }
  return block;
}

export class TreeBlockProblem extends Error {}

/** The first key of a block (to match against the key its parent points with). */
export function firstKey(block: TreeBlock): Key | undefined {
  return block.level === 0 ? block.items[0]?.key : block.ptrs[0]?.key;
}

export function itemData(block: TreeBlock, item: LeafItem): Buffer {
  return block.buf.subarray(item.dataStart, item.dataStart + item.size);
}
