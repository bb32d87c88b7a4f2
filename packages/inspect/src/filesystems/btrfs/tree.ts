/**
 * Searching one tree: every item with a key in [min, max] in key order, the
 * last item at or before a key, an exact key. Descents go only into
 * children whose key range can hold the keys asked for, each child one
 * level below its parent (so no loop can form), and a walk reads each block
 * at most once.
 */
import { compareKeys, type Key } from './key.ts';
import { itemData, type LeafItem, type TreeBlock } from './node.ts';
import type { BlockRef, BtrfsVolume } from './volume.ts';

export interface TreeRoot {
  bytenr: bigint;
  generation: bigint;
  level: number;
  /** For messages: "root tree", "FS tree 256", "chunk tree". */
  name: string;
  /** The tree's id (its ROOT_ITEM objectid), which every block of it must name as owner, as the kernel checks. */
  owner?: bigint;
}

export interface FoundItem {
  key: Key;
  data: Buffer;
  /** The leaf and where the item is in it (for error offsets). */
  block: TreeBlock;
  item: LeafItem;
}

function rootRef(root: TreeRoot): BlockRef {
  return { bytenr: root.bytenr, generation: root.generation, level: root.level, tree: root.name, owner: root.owner };
}

function childRef(parent: TreeBlock, i: number, root: TreeRoot): BlockRef {
  const p = parent.ptrs[i];
  return { bytenr: p.blockptr, generation: p.generation, level: parent.level - 1, firstKey: p.key, tree: root.name, owner: root.owner };
}

/** Every item with min <= key <= max, in key order. */
export async function* itemsInRange(vol: BtrfsVolume, root: TreeRoot, min: Key, max: Key): AsyncGenerator<FoundItem> {
  yield* visit(vol, await vol.readBlock(rootRef(root)), root, min, max);
}

async function* visit(vol: BtrfsVolume, block: TreeBlock, tree: TreeRoot, min: Key, max: Key): AsyncGenerator<FoundItem> {
  if (block.level === 0) {
    for (const item of block.items) {
      if (compareKeys(item.key, min) < 0) continue;
      if (compareKeys(item.key, max) > 0) return;
      yield { key: item.key, data: itemData(block, item), block, item };
    }
    return;
  }
  const ptrs = block.ptrs;
  for (let i = 0; i < ptrs.length; i++) {
    // Child i holds keys from ptrs[i].key up to (not including) ptrs[i + 1].key.
    if (i + 1 < ptrs.length && compareKeys(ptrs[i + 1].key, min) <= 0) continue;
    if (compareKeys(ptrs[i].key, max) > 0) return;
    yield* visit(vol, await vol.readBlock(childRef(block, i, tree)), tree, min, max);
  }
}

/** The item with the largest key <= `target`, or undefined. */
export async function lastAtOrBefore(vol: BtrfsVolume, root: TreeRoot, target: Key): Promise<FoundItem | undefined> {
  let block = await vol.readBlock(rootRef(root));
  for (;;) {
    if (block.level === 0) {
      for (let i = block.items.length - 1; i >= 0; i--) {
        const item = block.items[i];
        if (compareKeys(item.key, target) <= 0) return { key: item.key, data: itemData(block, item), block, item };
      }
      return undefined;
    }
    let slot = -1;
    for (let i = block.ptrs.length - 1; i >= 0; i--) {
      if (compareKeys(block.ptrs[i].key, target) <= 0) {
        slot = i;
        break;
      }
    }
    if (slot < 0) return undefined;
    block = await vol.readBlock(childRef(block, slot, root));
  }
}

/** The item with exactly this key, or undefined. */
export async function exactItem(vol: BtrfsVolume, root: TreeRoot, k: Key): Promise<FoundItem | undefined> {
  const found = await lastAtOrBefore(vol, root, k);
  return found && compareKeys(found.key, k) === 0 ? found : undefined;
}

/** Items whose objectid and type are given, any offset, in offset order. */
export function itemsOf(vol: BtrfsVolume, root: TreeRoot, objectid: bigint, type: number, fromOffset = 0n, toOffset = 0xffff_ffff_ffff_ffffn): AsyncGenerator<FoundItem> {
  return itemsInRange(vol, root, { objectid, type, offset: fromOffset }, { objectid, type, offset: toOffset });
}
