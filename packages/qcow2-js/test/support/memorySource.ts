/** A block source over a Buffer: lets the fuzzer parse thousands of mutated images without touching the disk. */
import { BlockRangeError, checkRange, type BlockSource, type Extent } from '../../src/index.ts';

export class MemorySource implements BlockSource {
  constructor(
    private readonly data: Buffer,
    readonly name: string,
  ) {}

  get size(): number {
    return this.data.length;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    return Buffer.from(this.data.subarray(offset, offset + length));
  }

  async readInto(target: Buffer, targetOffset: number, offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    if (targetOffset < 0 || targetOffset + length > target.length) throw new BlockRangeError(this.name, targetOffset, length, target.length);
    this.data.copy(target, targetOffset, offset, offset + length);
  }

  async extent(offset: number, length: number): Promise<Extent> {
    checkRange(this, offset, length);
    return { offset, length, kind: 'data' };
  }

  async refresh(): Promise<void> {}

  async close(): Promise<void> {}
}
