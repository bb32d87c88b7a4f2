import assert from 'node:assert/strict';
import { BlockRangeError, BlockWindow, GuestlensError, UnsafeNumberError, WindowBoundsError, checkRange, extents, readInto, toSafeNumber, type BlockSource, type Extent } from '../src/index.ts';

class Bytes implements BlockSource {
  constructor(
    private readonly data: Buffer,
    readonly name = 'mem.img',
  ) {}
  get size(): number {
    return this.data.length;
  }
  refreshes = 0;
  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    return Buffer.from(this.data.subarray(offset, offset + length));
  }
  async extent(offset: number, length: number): Promise<Extent> {
    checkRange(this, offset, length);
    // Zeros in the second half, data in the first.
    const half = this.data.length / 2;
    if (offset < half) return { offset, length: Math.min(length, half - offset), kind: 'data' };
    return { offset, length, kind: 'zero' };
  }
  async refresh(): Promise<void> {
    this.refreshes++;
  }
  async close(): Promise<void> {}
}

describe('block: windows, range checks and safe numbers', () => {
  const data = Buffer.from(Array.from({ length: 64 }, (_, i) => i));

  it('a window reads its part of the parent and nothing outside it', async () => {
    const w = new BlockWindow(new Bytes(data), 16, 16, 'mem.img partition 1');
    assert.deepEqual([...(await w.read(0, 4))], [16, 17, 18, 19]);
    const target = Buffer.alloc(6);
    await readInto(w, target, 1, 14, 2);
    assert.deepEqual([...target], [0, 30, 31, 0, 0, 0]);
    await assert.rejects(w.read(15, 2), (err: unknown) => err instanceof BlockRangeError && err instanceof RangeError && /mem\.img partition 1: read of 2 bytes at offset 15/.test(err.message));
    await assert.rejects(w.read(-1, 1), RangeError);
  });

  it('a window clips its parent\'s extents and refreshes the parent', async () => {
    const parent = new Bytes(data);
    const w = new BlockWindow(parent, 24, 16, 'w');
    const seen = [];
    for await (const e of extents(w)) seen.push(e);
    assert.deepEqual(seen, [
      { offset: 0, length: 8, kind: 'data' },
      { offset: 8, length: 8, kind: 'zero' },
    ]);
    await w.refresh();
    assert.equal(parent.refreshes, 1);
  });

  it('a window past its parent\'s end is a typed error', () => {
    assert.throws(() => new BlockWindow(new Bytes(data), 60, 8, 'x'), (err: unknown) => err instanceof WindowBoundsError && err.code === 'ERANGE');
  });

  it('closed windows refuse reads', async () => {
    const w = new BlockWindow(new Bytes(data), 0, 8, 'w');
    await w.close();
    await assert.rejects(w.read(0, 1), /already closed/);
  });

  it('toSafeNumber converts what fits and refuses what does not, by name', () => {
    assert.equal(toSafeNumber(2n ** 53n - 1n, 'x'), 2 ** 53 - 1);
    assert.throws(() => toSafeNumber(2n ** 53n, 'inode number'), (err: unknown) => err instanceof UnsafeNumberError && err.code === 'EOVERFLOW' && /inode number is 9007199254740992/.test(err.message));
  });

  it('every error of the block layer is a GuestlensError with a code, data and JSON', () => {
    const range = new BlockRangeError('a.img', 5, 10, 8);
    assert.ok(range instanceof GuestlensError);
    assert.ok(!(range instanceof WindowBoundsError), 'subclass tests stay exact');
    assert.deepEqual(range.toJSON(), { name: 'BlockRangeError', code: 'ERANGE', message: range.message, retryable: false, data: { source: 'a.img', offset: 5, length: 10, size: 8 } });
    const base = new GuestlensError('EXAMPLE', 'something', { retryable: true, data: { offset: 1 } });
    assert.equal(base.userFacing, true);
    assert.equal(JSON.parse(JSON.stringify(base)).retryable, true);
  });
});
