/**
 * The lists a key node points at. Subkey lists come in four kinds: index
 * leaves (li: cell indexes), fast leaves (lf: index + the first four
 * characters of the name), hash leaves (lh: index + a hash of the upper-cased
 * name), and index roots (ri: a list of leaves, for keys with many subkeys).
 * An index root never points at another index root, so a subkey list is at
 * most two levels deep; every element is counted against the key's limit,
 * and a subkey listed twice is damage (it would make the tree a graph).
 *
 * Value lists are bare arrays of cell indexes, as long as the key node's
 * value count says.
 */
import { LIST, SIGNATURE } from './layout.ts';
import type { Cells } from './cells.ts';
import { RegfLimitError } from './errors.ts';

export interface SubkeyEntry {
  /** Cell index of the subkey's key node. */
  cell: number;
  /** lh: the stored name hash. */
  hash?: number;
}

const LEAVES = [SIGNATURE.indexLeaf, SIGNATURE.fastLeaf, SIGNATURE.hashLeaf];
const ANY_LIST = [...LEAVES, SIGNATURE.indexRoot];

/** Every entry of the subkey list at `listCell`, in stored order (Windows keeps it sorted by upper-cased name). */
export async function readSubkeyList(cells: Cells, listCell: number, structure: string, maxSubkeys: number): Promise<SubkeyEntry[]> {
  const entries: SubkeyEntry[] = [];
  const seen = new Set<number>();
  const root = await cells.record(listCell, ANY_LIST, structure, LIST.elements);
  const add = (entry: SubkeyEntry, listAt: number) => {
    if (seen.has(entry.cell)) throw cells.corrupt(structure, listAt, `it lists the key node at cell 0x${entry.cell.toString(16)} twice`);
    seen.add(entry.cell);
    if (entries.length >= maxSubkeys) throw new RegfLimitError(cells.ctx.hive, `the number of subkeys in ${structure}`, entries.length + 1, maxSubkeys, 'maxSubkeys');
    entries.push(entry);
  };
  if (root.signature !== SIGNATURE.indexRoot) {
    readLeaf(cells, listCell, root.data, root.signature, structure, add);
    return entries;
  }
  const leafCells = elements(cells, listCell, root.data, 4, structure).map((at) => root.data.readUInt32LE(at));
  const seenLeaves = new Set<number>();
  for (const leafCell of leafCells) {
    if (seenLeaves.has(leafCell)) throw cells.corrupt(structure, listCell, `the index root lists the leaf at cell 0x${leafCell.toString(16)} twice`);
    seenLeaves.add(leafCell);
    const leaf = await cells.record(leafCell, LEAVES, `${structure} (a leaf of the index root at cell 0x${listCell.toString(16)})`, LIST.elements);
    readLeaf(cells, leafCell, leaf.data, leaf.signature, structure, add);
  }
  return entries;
}

function readLeaf(cells: Cells, cell: number, data: Buffer, signature: string, structure: string, add: (e: SubkeyEntry, listAt: number) => void): void {
  const width = signature === SIGNATURE.indexLeaf ? 4 : 8;
  for (const at of elements(cells, cell, data, width, structure)) {
    const entry: SubkeyEntry = { cell: data.readUInt32LE(at) };
    if (signature === SIGNATURE.hashLeaf) entry.hash = data.readUInt32LE(at + 4);
    add(entry, cell);
  }
}

/** Offsets of the elements of a list record, checked against its cell. */
function elements(cells: Cells, cell: number, data: Buffer, width: number, structure: string): number[] {
  const count = data.readUInt16LE(LIST.count);
  if (LIST.elements + count * width > data.length) {
    throw cells.corrupt(structure, cell, `its ${count} elements of ${width} bytes run past the end of the cell (${data.length} bytes)`);
  }
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(LIST.elements + i * width);
  return out;
}

/** The cell indexes of a key's `count` values. */
export async function readValueList(cells: Cells, listCell: number, count: number, structure: string, maxValues: number): Promise<number[]> {
  if (count > maxValues) throw new RegfLimitError(cells.ctx.hive, `the number of values of ${structure}`, count, maxValues, 'maxValues');
  const length = await cells.cellLength(listCell, structure);
  if (count * 4 > length) throw cells.corrupt(structure, listCell, `${count} values need ${count * 4} bytes, the cell holds ${length}`);
  const data = await cells.cell(listCell, structure, count * 4);
  const out: number[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < count; i++) {
    const vk = data.readUInt32LE(i * 4);
    if (seen.has(vk)) throw cells.corrupt(structure, listCell, `it lists the value at cell 0x${vk.toString(16)} twice`);
    seen.add(vk);
    out.push(vk);
  }
  return out;
}
