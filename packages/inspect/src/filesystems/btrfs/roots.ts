/**
 * The root tree: where every other tree starts (ROOT_ITEMs), which
 * subvolumes exist and where each is linked (ROOT_BACKREF: parent tree,
 * directory, name), and the default subvolume (the "default" directory item
 * of the root tree's directory, objectid 6).
 */
import { decodeName } from '../names.ts';
import type { Subvolume } from '../filesystem.ts';
import { crc32c } from '../crc32c.ts';
import { ItemProblem, parseDirItems, parseInodeRefs, parseRootItem, parseRootRef, type RootItem } from './items.ts';
import { MAX_U64 } from './key.ts';
import { FIRST_FREE_OBJECTID, KEY, OBJECTID, ROOT_SUBVOL_RDONLY } from './layout.ts';
import { exactItem, itemsInRange, itemsOf, lastAtOrBefore, type FoundItem, type TreeRoot } from './tree.ts';
import type { BtrfsVolume } from './volume.ts';

/** btrfs_name_hash: crc32c seeded with ~1, no final inversion (the key offset of DIR_ITEM and XATTR_ITEM). */
export function nameHash(name: Buffer): bigint {
  return BigInt(crc32c(0xfffffffe, name));
}

export function decodeItem<T>(vol: BtrfsVolume, it: FoundItem, what: string, decode: (d: Buffer) => T): T {
  try {
    return decode(it.data);
  } catch (err) {
    if (err instanceof ItemProblem) throw vol.corrupt(`${what} in tree block ${it.block.bytenr}`, undefined, err.message);
    throw err;
  }
}

/** The newest ROOT_ITEM of tree `id` (snapshots carry their creation transid as the key offset). */
export async function findRoot(vol: BtrfsVolume, rootTree: TreeRoot, id: bigint): Promise<RootItem | undefined> {
  const found = await lastAtOrBefore(vol, rootTree, { objectid: id, type: KEY.ROOT_ITEM, offset: MAX_U64 });
  if (!found || found.key.objectid !== id || found.key.type !== KEY.ROOT_ITEM) return undefined;
  return decodeItem(vol, found, `root item ${id}`, parseRootItem);
}

export function treeRootOf(id: bigint, item: RootItem): TreeRoot {
  return { bytenr: item.bytenr, generation: item.generation, level: item.level, name: id === OBJECTID.FS_TREE ? 'FS tree 5 (top level)' : `FS tree ${id}`, owner: id };
}

/** The default subvolume's id (5 when the root tree names none). */
export async function defaultSubvolume(vol: BtrfsVolume, rootTree: TreeRoot): Promise<bigint> {
  const name = Buffer.from('default');
  const found = await exactItem(vol, rootTree, { objectid: OBJECTID.ROOT_TREE_DIR, type: KEY.DIR_ITEM, offset: nameHash(name) });
  if (!found) return OBJECTID.FS_TREE;
  const entries = decodeItem(vol, found, 'the default subvolume directory item', (d) => parseDirItems(d));
  const hit = entries.find((e) => e.name.equals(name));
  return hit ? hit.location.objectid : OBJECTID.FS_TREE;
}

export interface SubvolumeRecord {
  id: bigint;
  parentId: bigint;
  /** Directory of the parent tree it is linked in, and its name there. */
  dirid: bigint;
  name: Buffer;
  item: RootItem;
}

/** Bounds the root-tree scan (a subvolume is three items; a hostile tree stops here). */
const MAX_SUBVOLUMES = 1_000_000;

/** Every subvolume linked somewhere (deleted ones, without a back reference, are left out), in id order. */
export async function listSubvolumeRecords(vol: BtrfsVolume, rootTree: TreeRoot): Promise<SubvolumeRecord[]> {
  const items = new Map<bigint, RootItem>();
  const refs = new Map<bigint, { parentId: bigint; dirid: bigint; name: Buffer }>();
  let seen = 0;
  for await (const it of itemsInRange(vol, rootTree, { objectid: OBJECTID.FIRST_FREE, type: 0, offset: 0n }, { objectid: OBJECTID.LAST_FREE, type: 255, offset: MAX_U64 })) {
    if (++seen > MAX_SUBVOLUMES * 4) throw vol.corrupt('root tree', undefined, `more than ${MAX_SUBVOLUMES * 4} items in the subvolume range`);
    if (it.key.type === KEY.ROOT_ITEM) items.set(it.key.objectid, decodeItem(vol, it, `root item ${it.key.objectid}`, parseRootItem));
    else if (it.key.type === KEY.ROOT_BACKREF && !refs.has(it.key.objectid)) {
      const ref = decodeItem(vol, it, `root back reference ${it.key.objectid}`, parseRootRef);
      refs.set(it.key.objectid, { parentId: it.key.offset, dirid: ref.dirid, name: ref.name });
    }
  }
  const out: SubvolumeRecord[] = [];
  for (const [id, item] of items) {
    const ref = refs.get(id);
    if (!ref || item.refs === 0) continue;
    out.push({ id, ...ref, item });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** PATH_MAX bounds every path walk. */
const MAX_DEPTH = 4096;

/** The path of directory `dirid` in tree `tree`, from that tree's root ("" for the root itself). */
export async function directoryPath(vol: BtrfsVolume, tree: TreeRoot, dirid: bigint): Promise<string> {
  const parts: string[] = [];
  let ino = dirid;
  for (let depth = 0; ino !== BigInt(FIRST_FREE_OBJECTID); depth++) {
    if (depth >= MAX_DEPTH) throw vol.corrupt(`directory ${dirid} in ${tree.name}`, undefined, `its parent chain is longer than ${MAX_DEPTH} (a loop)`);
    const ref = await lastAtOrBefore(vol, tree, { objectid: ino, type: KEY.INODE_REF, offset: MAX_U64 });
    if (!ref || ref.key.objectid !== ino || ref.key.type !== KEY.INODE_REF) throw vol.corrupt(`directory ${ino} in ${tree.name}`, undefined, 'it has no inode ref naming its parent');
    const names = decodeItem(vol, ref, `inode ref of ${ino}`, parseInodeRefs);
    parts.unshift(decodeName(names[0].name));
    if (ref.key.offset === ino) throw vol.corrupt(`directory ${ino} in ${tree.name}`, undefined, 'it is its own parent');
    ino = ref.key.offset;
  }
  return parts.join('/');
}

/** Subvolumes with their paths from the top level, as `btrfs subvolume list` shows them. */
export async function listSubvolumes(vol: BtrfsVolume, rootTree: TreeRoot, records: SubvolumeRecord[], defaultId: bigint): Promise<Subvolume[]> {
  const byId = new Map(records.map((r) => [r.id, r]));
  const paths = new Map<bigint, string>([[OBJECTID.FS_TREE, '']]);
  const pathOf = async (id: bigint, depth: number): Promise<string> => {
    const known = paths.get(id);
    if (known !== undefined) return known;
    const r = byId.get(id);
    if (!r) throw vol.corrupt(`root back reference of subvolume`, undefined, `it names parent ${id}, which is no subvolume`);
    if (depth > MAX_DEPTH) throw vol.corrupt(`subvolume ${id}`, undefined, 'its parents form a loop');
    const parentPath = await pathOf(r.parentId, depth + 1);
    const parentItem = r.parentId === OBJECTID.FS_TREE ? await findRoot(vol, rootTree, OBJECTID.FS_TREE) : byId.get(r.parentId)?.item;
    if (!parentItem) throw vol.corrupt(`subvolume ${id}`, undefined, `its parent tree ${r.parentId} has no root item`);
    const dir = await directoryPath(vol, treeRootOf(r.parentId, parentItem), r.dirid);
    const path = [parentPath, dir, decodeName(r.name)].filter((p) => p !== '').join('/');
    paths.set(id, path);
    return path;
  };
  const out: Subvolume[] = [];
  for (const r of records) {
    out.push({
      id: Number(r.id),
      path: await pathOf(r.id, 0),
      parentId: Number(r.parentId),
      isSnapshot: r.item.parentUuid !== undefined && r.item.parentUuid.some((b) => b !== 0),
      readOnly: (r.item.flags & ROOT_SUBVOL_RDONLY) !== 0n,
      isDefault: r.id === defaultId,
    });
  }
  return out;
}

/** Whether subvolume `child` is linked in tree `parent` at directory `dirid` under `name` (ROOT_REF), as the kernel checks before crossing into it. */
export async function isLinkedAt(vol: BtrfsVolume, rootTree: TreeRoot, parent: bigint, child: bigint, dirid: bigint, name: Buffer): Promise<boolean> {
  for await (const it of itemsOf(vol, rootTree, parent, KEY.ROOT_REF, child, child)) {
    const ref = decodeItem(vol, it, `root reference ${parent} -> ${child}`, parseRootRef);
    if (ref.dirid === dirid && ref.name.equals(name)) return true;
  }
  return false;
}
