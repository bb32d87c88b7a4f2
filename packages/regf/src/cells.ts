/**
 * Cells: the hive's unit of storage. A cell index (the offset every record
 * uses to point at another) is relative to the hive bins data; the cell
 * starts with a 32-bit size, negative when allocated, and lies wholly inside
 * one hive bin. Every pointer a record holds goes through `cell()`, which
 * checks all of that before reading a byte of the cell data, so a hostile
 * hive can only ever make us read inside itself, and never more than the
 * limits allow.
 *
 * Hive bins are found lazily: the bin holding a cell starts at the nearest
 * 4096-byte page at or before it whose header says "hbin" with its own
 * offset; the result is cached per page. Walking every bin header up front
 * would read the whole hive (a SOFTWARE hive has tens of thousands of bins)
 * to look up three keys.
 */
import { BoundedLru } from '@guestlens/block';
import { CELL_ALIGN, HBIN, HBIN_ALIGN, HBIN_SIGNATURE, HBINS_START } from './layout.ts';
import { RegfCorruptError, RegfLimitError } from './errors.ts';
import type { HiveStorage } from './storage.ts';

export interface CellContext {
  hive: string;
  storage: HiveStorage;
  /** Bytes of hive bins data the base block declares. */
  hiveBinsDataSize: number;
  maxCellBytes: number;
  live: boolean;
  dirty: boolean;
}

interface Bin {
  /** File offset of the bin header. */
  start: number;
  size: number;
}

export class Cells {
  private readonly binByPage = new BoundedLru<number, Bin>(1 << 16);
  /** File offset where hive bins data ends: what the base block declares, cut to the file. */
  readonly end: number;

  constructor(readonly ctx: CellContext) {
    this.end = Math.min(HBINS_START + ctx.hiveBinsDataSize, ctx.storage.size);
  }

  corrupt(structure: string, cell: number | undefined, reason: string): RegfCorruptError {
    return new RegfCorruptError(this.ctx.hive, structure, cell, reason, { retryable: this.ctx.live, dirty: this.ctx.dirty });
  }

  /**
   * The data of the allocated cell at `index` (after its size field): at
   * most `wanted` bytes of it when given (the whole cell is still checked).
   */
  async cell(index: number, structure: string, wanted?: number): Promise<Buffer> {
    const { fileOffset, length } = await this.locate(index, structure);
    const n = wanted === undefined ? length : Math.min(wanted, length);
    return this.ctx.storage.read(fileOffset + 4, n);
  }

  /** The cell data length (size minus its size field) of the allocated cell at `index`, checked. */
  async cellLength(index: number, structure: string): Promise<number> {
    return (await this.locate(index, structure)).length;
  }

  /** A cell whose data must start with one of `signatures` ("nk", "lh"...); returns the data and the signature found. */
  async record(index: number, signatures: readonly string[], structure: string, minLength: number): Promise<{ data: Buffer; signature: string }> {
    const data = await this.cell(index, structure);
    if (data.length < Math.max(2, minLength)) throw this.corrupt(structure, index, `the cell holds ${data.length} bytes, too few for its record (${Math.max(2, minLength)})`);
    const signature = data.toString('latin1', 0, 2);
    if (!signatures.includes(signature)) {
      throw this.corrupt(structure, index, `expected a ${signatures.map((s) => `"${s}"`).join(' or ')} record, found signature ${JSON.stringify(signature)}`);
    }
    return { data, signature };
  }

  private async locate(index: number, structure: string): Promise<{ fileOffset: number; length: number }> {
    if (!Number.isSafeInteger(index) || index < 0 || index % CELL_ALIGN !== 0) {
      throw this.corrupt(structure, undefined, `cell index 0x${index.toString(16)} is not a multiple of ${CELL_ALIGN}`);
    }
    const fileOffset = HBINS_START + index;
    if (fileOffset + 8 > this.end) {
      throw this.corrupt(
        structure,
        index,
        fileOffset + 8 > HBINS_START + this.ctx.hiveBinsDataSize
          ? `beyond the hive bins data (${this.ctx.hiveBinsDataSize} bytes)`
          : `beyond the end of the file (${this.ctx.storage.size} bytes): the hive is truncated`,
      );
    }
    const bin = await this.binAt(fileOffset, index, structure);
    if (fileOffset < bin.start + HBIN.headerSize) throw this.corrupt(structure, index, `inside the header of the hive bin at file offset ${bin.start}`);
    const size = (await this.ctx.storage.read(fileOffset, 4)).readInt32LE(0);
    if (size >= 0) throw this.corrupt(structure, index, size === 0 ? 'the cell has size 0' : 'the cell is free (unallocated)');
    const total = -size;
    if (total < 8 || total % CELL_ALIGN !== 0) throw this.corrupt(structure, index, `cell size ${total} is not a multiple of ${CELL_ALIGN} of at least 8`);
    const binEnd = Math.min(bin.start + bin.size, this.end);
    if (fileOffset + total > binEnd) {
      throw this.corrupt(structure, index, `the cell (${total} bytes) runs past the end of its hive bin (file offset ${bin.start}, ${bin.size} bytes)${binEnd < bin.start + bin.size ? ', which the file cuts short' : ''}`);
    }
    const length = total - 4;
    if (length > this.ctx.maxCellBytes) throw new RegfLimitError(this.ctx.hive, `${structure} (${describe(index)}) cell size`, length, this.ctx.maxCellBytes, 'maxCellBytes');
    return { fileOffset, length };
  }

  private async binAt(fileOffset: number, index: number, structure: string): Promise<Bin> {
    const page = Math.floor(fileOffset / HBIN_ALIGN);
    const known = this.binByPage.get(page);
    if (known) return known;
    // A bin holds at least one cell, so no bin is larger than the largest cell we accept (plus its header and padding).
    const maxPages = Math.ceil((this.ctx.maxCellBytes + HBIN.headerSize + 8) / HBIN_ALIGN) + 1;
    const firstPage = HBINS_START / HBIN_ALIGN;
    for (let p = page, walked = 0; p >= firstPage && walked < maxPages; p--, walked++) {
      const start = p * HBIN_ALIGN;
      const header = await this.ctx.storage.read(start, HBIN.headerSize);
      if (header.toString('latin1', 0, 4) !== HBIN_SIGNATURE || header.readUInt32LE(HBIN.offset) !== start - HBINS_START) continue;
      const size = header.readUInt32LE(HBIN.size);
      if (size < HBIN_ALIGN || size % HBIN_ALIGN !== 0) {
        throw this.corrupt(structure, index, `the hive bin at file offset ${start} has size ${size}, not a positive multiple of ${HBIN_ALIGN}`);
      }
      if (start + size > HBINS_START + this.ctx.hiveBinsDataSize) {
        throw this.corrupt(structure, index, `the hive bin at file offset ${start} (${size} bytes) runs past the hive bins data (${this.ctx.hiveBinsDataSize} bytes)`);
      }
      if (start + size <= fileOffset) break;
      const bin = { start, size };
      for (let q = p; q <= page; q++) this.binByPage.set(q, bin);
      return bin;
    }
    throw this.corrupt(structure, index, 'no hive bin header precedes it (the bin holding it is damaged)');
  }

  /** Forget what was learnt about bins (the hive changed under us). */
  clear(): void {
    this.binByPage.clear();
  }
}

function describe(index: number): string {
  return `cell 0x${index.toString(16)}`;
}
