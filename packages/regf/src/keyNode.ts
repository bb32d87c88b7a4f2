/**
 * Key nodes (nk records, CM_KEY_NODE): a key's name, flags, last-write time,
 * and the cell indexes of its subkey list, value list, security record and
 * class name.
 */
import { CELL_NIL, KEY_FLAGS, NK, SIGNATURE } from './layout.ts';
import type { Cells } from './cells.ts';
import { decodeName } from './names.ts';
import { readFiletime } from './filetime.ts';

export interface KeyNode {
  /** Cell index of this record. */
  cell: number;
  flags: number;
  /** FILETIME. */
  lastWritten: bigint;
  parent: number;
  subkeyCount: number;
  subkeyList: number;
  volatileSubkeyCount: number;
  valueCount: number;
  valueList: number;
  security: number;
  classNameCell: number;
  classLength: number;
  name: string;
  /** The name as stored (Latin-1 bytes when compressed, else UTF-16LE). */
  rawName: Buffer;
  compressedName: boolean;
}

export async function readKeyNode(cells: Cells, cell: number, structure: string): Promise<KeyNode> {
  const { data } = await cells.record(cell, [SIGNATURE.keyNode], structure, NK.name);
  const nameLength = data.readUInt16LE(NK.nameLength);
  if (NK.name + nameLength > data.length) {
    throw cells.corrupt(structure, cell, `its name (${nameLength} bytes) runs past the end of the cell (${data.length} bytes)`);
  }
  const flags = data.readUInt16LE(NK.flags);
  const compressedName = (flags & KEY_FLAGS.compressedName) !== 0;
  const rawName = Buffer.from(data.subarray(NK.name, NK.name + nameLength));
  return {
    cell,
    flags,
    lastWritten: readFiletime(data, NK.lastWritten),
    parent: data.readUInt32LE(NK.parent),
    subkeyCount: data.readUInt32LE(NK.subkeyCount),
    subkeyList: data.readUInt32LE(NK.subkeyList),
    volatileSubkeyCount: data.readUInt32LE(NK.volatileSubkeyCount),
    valueCount: data.readUInt32LE(NK.valueCount),
    valueList: data.readUInt32LE(NK.valueList),
    security: data.readUInt32LE(NK.security),
    classNameCell: data.readUInt32LE(NK.className),
    classLength: data.readUInt16LE(NK.classLength),
    name: decodeName(rawName, compressedName),
    rawName,
    compressedName,
  };
}

export function hasCell(index: number): boolean {
  return index !== CELL_NIL;
}
