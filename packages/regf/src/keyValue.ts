/**
 * Values (vk records, CM_KEY_VALUE) and where their data lives: in the
 * record itself (at most 4 bytes, flagged by the top bit of the length), in
 * one data cell, or, for data too big for one cell, in a big data record (db)
 * that lists segments of 16344 bytes each (the last one holds the rest).
 *
 * Which of the last two applies is decided as hivex decides it: data that
 * fits in the cell the value points at is read from that cell (hives before
 * version 1.4 have no big data records, and their cells may be large);
 * otherwise that cell must be a big data record.
 */
import { BIG_DATA_SEGMENT_SIZE, DATA_RESIDENT, DB, SIGNATURE, VALUE_FLAGS, VK } from './layout.ts';
import type { Cells } from './cells.ts';
import { RegfLimitError } from './errors.ts';
import { decodeName } from './names.ts';

export interface KeyValueRecord {
  cell: number;
  name: string;
  rawName: Buffer;
  compressedName: boolean;
  /** REG_* type code (any 32-bit number; unknown types are kept as they are). */
  type: number;
  /** Data length in bytes (without the resident flag). */
  dataLength: number;
  /** The data is stored in the record's data offset field. */
  resident: boolean;
  dataOffset: number;
  flags: number;
}

export async function readKeyValue(cells: Cells, cell: number, structure: string): Promise<KeyValueRecord> {
  const { data } = await cells.record(cell, [SIGNATURE.keyValue], structure, VK.name);
  const nameLength = data.readUInt16LE(VK.nameLength);
  if (VK.name + nameLength > data.length) {
    throw cells.corrupt(structure, cell, `its name (${nameLength} bytes) runs past the end of the cell (${data.length} bytes)`);
  }
  const flags = data.readUInt16LE(VK.flags);
  const compressedName = (flags & VALUE_FLAGS.compressedName) !== 0;
  const rawName = Buffer.from(data.subarray(VK.name, VK.name + nameLength));
  const rawLength = data.readUInt32LE(VK.dataLength);
  return {
    cell,
    name: decodeName(rawName, compressedName),
    rawName,
    compressedName,
    type: data.readUInt32LE(VK.type),
    dataLength: rawLength & 0x7fffffff,
    resident: (rawLength & DATA_RESIDENT) !== 0,
    dataOffset: data.readUInt32LE(VK.dataOffset),
    flags,
  };
}

/** The value's data bytes, exactly `dataLength` of them. */
export async function readValueData(cells: Cells, vk: KeyValueRecord, structure: string, maxValueBytes: number): Promise<Buffer> {
  const length = vk.dataLength;
  if (vk.resident) {
    if (length > 4) throw cells.corrupt(structure, vk.cell, `resident data of ${length} bytes (at most 4 fit in the record)`);
    const field = Buffer.alloc(4);
    field.writeUInt32LE(vk.dataOffset);
    return field.subarray(0, length);
  }
  if (length === 0) return Buffer.alloc(0);
  if (length > maxValueBytes) throw new RegfLimitError(cells.ctx.hive, `the data of ${structure}`, length, maxValueBytes, 'maxValueBytes');
  const dataStructure = `data of ${structure}`;
  const cellLength = await cells.cellLength(vk.dataOffset, dataStructure);
  if (length <= cellLength) return Buffer.from(await cells.cell(vk.dataOffset, dataStructure, length));
  const head = await cells.cell(vk.dataOffset, dataStructure, DB.size);
  if (head.length < DB.size || head.toString('latin1', 0, 2) !== SIGNATURE.bigData) {
    throw cells.corrupt(dataStructure, vk.dataOffset, `${length} bytes of data do not fit in the cell (${cellLength} bytes), and it is not a big data ("db") record`);
  }
  return readBigData(cells, vk.dataOffset, head, length, `big data of ${structure}`);
}

async function readBigData(cells: Cells, dbCell: number, head: Buffer, length: number, structure: string): Promise<Buffer> {
  const segmentCount = head.readUInt16LE(DB.segmentCount);
  const listCell = head.readUInt32LE(DB.segmentList);
  const needed = Math.ceil(length / BIG_DATA_SEGMENT_SIZE);
  if (segmentCount < needed) {
    throw cells.corrupt(structure, dbCell, `${segmentCount} segments of at most ${BIG_DATA_SEGMENT_SIZE} bytes cannot hold ${length} bytes`);
  }
  const listLength = await cells.cellLength(listCell, `segment list of ${structure}`);
  if (needed * 4 > listLength) throw cells.corrupt(`segment list of ${structure}`, listCell, `${needed} segments need ${needed * 4} bytes, the cell holds ${listLength}`);
  const list = await cells.cell(listCell, `segment list of ${structure}`, needed * 4);
  const out = Buffer.alloc(length);
  for (let i = 0, done = 0; i < needed; i++) {
    const segment = list.readUInt32LE(i * 4);
    const want = Math.min(BIG_DATA_SEGMENT_SIZE, length - done);
    const what = `segment ${i} of ${structure}`;
    const have = await cells.cellLength(segment, what);
    if (have < want) throw cells.corrupt(what, segment, `the segment cell holds ${have} bytes, ${want} are needed`);
    (await cells.cell(segment, what, want)).copy(out, done);
    done += want;
  }
  return out;
}
