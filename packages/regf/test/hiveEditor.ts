/**
 * Structures hivex never writes, added to a hivex-made hive so the reader
 * meets them: big data records (db: Windows stores values over 16344 bytes
 * in segments of 16344, each segment cell padded), index roots (ri) over
 * leaves of every kind (li, lf, lh), class names, and dirty base blocks.
 * New cells go into one hive bin appended at the end; the base block's hive
 * bins size and checksum are updated. hivex then reads the edited file as
 * the oracle, so the edit is checked by a reader other than ours.
 *
 * Cells are located with the reader under test (key.cell, value.cell), which
 * is fine: what matters is that hivex and we agree on the result.
 */
import { BASE_BLOCK, BIG_DATA_SEGMENT_SIZE, HBINS_START, NK, VK } from '../src/layout.ts';
import { baseBlockChecksum } from '../src/baseBlock.ts';
import { nameHash } from '../src/names.ts';

export class HiveEditor {
  private readonly newCells: Buffer[] = [];
  private readonly oldBinsSize: number;
  private nextCell: number;

  constructor(readonly hive: Buffer) {
    this.oldBinsSize = hive.readUInt32LE(BASE_BLOCK.hiveBinsDataSize);
    // The appended bin's header takes the first 32 bytes.
    this.nextCell = this.oldBinsSize + 32;
  }

  /** Bytes of the cell data at `cell` (a view into the hive). */
  cellData(cell: number): Buffer {
    const at = HBINS_START + cell;
    const size = -this.hive.readInt32LE(at);
    return this.hive.subarray(at + 4, at + size);
  }

  /** The index the next addCell() returns. */
  get nextCellIndex(): number {
    return this.nextCell;
  }

  /** Append a cell holding `data` (padded to 8 with `pad`); returns its index. */
  addCell(data: Buffer, pad = 0): number {
    const total = Math.ceil((data.length + 4) / 8) * 8;
    const cell = Buffer.alloc(total, pad);
    cell.writeInt32LE(-total, 0);
    data.copy(cell, 4);
    const index = this.nextCell;
    this.newCells.push(cell);
    this.nextCell += total;
    return index;
  }

  setU32(cell: number, field: number, value: number): void {
    this.hive.writeUInt32LE(value >>> 0, HBINS_START + cell + 4 + field);
  }

  setU16(cell: number, field: number, value: number): void {
    this.hive.writeUInt16LE(value, HBINS_START + cell + 4 + field);
  }

  /** Move a value's data (in one cell now) into big data segments, as Windows stores data over 16344 bytes. */
  toBigData(vkCell: number): void {
    const vk = this.cellData(vkCell);
    const length = vk.readUInt32LE(VK.dataLength);
    const data = Buffer.from(this.cellData(vk.readUInt32LE(VK.dataOffset)).subarray(0, length));
    const segments: number[] = [];
    for (let done = 0; done < length; done += BIG_DATA_SEGMENT_SIZE) {
      // Four bytes of junk after each segment's data, as Windows' cells have: a reader that takes the cell size would see them.
      segments.push(this.addCell(Buffer.concat([data.subarray(done, done + BIG_DATA_SEGMENT_SIZE), Buffer.from('JUNK')]), 0xee));
    }
    const list = Buffer.alloc(segments.length * 4);
    segments.forEach((s, i) => list.writeUInt32LE(s, i * 4));
    const listCell = this.addCell(list);
    const db = Buffer.alloc(12);
    db.write('db', 0, 'latin1');
    db.writeUInt16LE(segments.length, 2);
    db.writeUInt32LE(listCell, 4);
    this.setU32(vkCell, VK.dataOffset, this.addCell(db));
  }

  /**
   * Replace a key's subkey list (a leaf) by an index root over `kinds.length`
   * leaves of the given kinds, splitting the entries in order.
   */
  toIndexRoot(nkCell: number, kinds: Array<'li' | 'lf' | 'lh'>, names: string[]): void {
    const nk = this.cellData(nkCell);
    const leaf = this.cellData(nk.readUInt32LE(NK.subkeyList));
    const kind = leaf.toString('latin1', 0, 2);
    if (kind === 'ri') throw new Error('already an index root');
    const count = leaf.readUInt16LE(2);
    const width = kind === 'li' ? 4 : 8;
    const entries: number[] = [];
    for (let i = 0; i < count; i++) entries.push(leaf.readUInt32LE(4 + i * width));
    if (names.length !== entries.length) throw new Error('one name per entry');
    const leaves: number[] = [];
    const per = Math.ceil(entries.length / kinds.length);
    kinds.forEach((k, part) => {
      const chunk = entries.slice(part * per, (part + 1) * per);
      const chunkNames = names.slice(part * per, (part + 1) * per);
      const w = k === 'li' ? 4 : 8;
      const buf = Buffer.alloc(4 + chunk.length * w);
      buf.write(k, 0, 'latin1');
      buf.writeUInt16LE(chunk.length, 2);
      chunk.forEach((cell, i) => {
        buf.writeUInt32LE(cell, 4 + i * w);
        if (k === 'lh') buf.writeUInt32LE(nameHash(chunkNames[i]), 8 + i * w);
        if (k === 'lf') Buffer.from(chunkNames[i].slice(0, 4).padEnd(4, '\0'), 'latin1').copy(buf, 8 + i * w);
      });
      leaves.push(this.addCell(buf));
    });
    const ri = Buffer.alloc(4 + leaves.length * 4);
    ri.write('ri', 0, 'latin1');
    ri.writeUInt16LE(leaves.length, 2);
    leaves.forEach((l, i) => ri.writeUInt32LE(l, 4 + i * 4));
    this.setU32(nkCell, NK.subkeyList, this.addCell(ri));
  }

  setFiletime(nkCell: number, filetime: bigint): void {
    this.hive.writeBigUInt64LE(filetime, HBINS_START + nkCell + 4 + NK.lastWritten);
  }

  setClassName(nkCell: number, className: string): void {
    const bytes = Buffer.from(className, 'utf16le');
    this.setU32(nkCell, NK.className, this.addCell(bytes));
    this.setU16(nkCell, NK.classLength, bytes.length);
  }

  /** The edited hive: new cells in one appended bin, base block updated (sequence numbers as given, checksum recomputed unless told not to). */
  finish(options: { primarySequence?: number; secondarySequence?: number; badChecksum?: boolean } = {}): Buffer {
    let out = this.hive;
    if (this.newCells.length) {
      const used = this.nextCell - this.oldBinsSize;
      const binSize = Math.ceil(used / 4096) * 4096;
      const bin = Buffer.alloc(binSize);
      bin.write('hbin', 0, 'latin1');
      bin.writeUInt32LE(this.oldBinsSize, 4);
      bin.writeUInt32LE(binSize, 8);
      let at = 32;
      for (const cell of this.newCells) {
        cell.copy(bin, at);
        at += cell.length;
      }
      // The rest of the bin is one free cell, as Windows leaves it.
      if (binSize - at >= 8) bin.writeInt32LE(binSize - at, at);
      out = Buffer.concat([this.hive.subarray(0, HBINS_START + this.oldBinsSize), bin]);
      out.writeUInt32LE(this.oldBinsSize + binSize, BASE_BLOCK.hiveBinsDataSize);
    } else {
      out = Buffer.from(out);
    }
    if (options.primarySequence !== undefined) out.writeUInt32LE(options.primarySequence, BASE_BLOCK.primarySequence);
    if (options.secondarySequence !== undefined) out.writeUInt32LE(options.secondarySequence, BASE_BLOCK.secondarySequence);
    const sum = baseBlockChecksum(out);
    out.writeUInt32LE(options.badChecksum ? (sum ^ 0x5a5a) >>> 0 : sum, BASE_BLOCK.checksum);
    return out;
  }
}
