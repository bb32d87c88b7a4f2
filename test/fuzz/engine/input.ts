/**
 * One fuzz input: a seed file plus the 512-byte units a mutation changed
 * (copied on write) and a length. A case costs its edits, not a copy of a
 * many-megabyte disk image, and the edits are what a hang report carries.
 */
import { MemorySource } from '../../support/memorySource.ts';

export const UNIT = 512;

export class FuzzInput {
  constructor(
    readonly base: Buffer,
    public size = base.length,
    readonly units = new Map<number, Buffer>(),
  ) {}

  clone(): FuzzInput {
    const units = new Map<number, Buffer>();
    for (const [i, u] of this.units) units.set(i, Buffer.from(u));
    return new FuzzInput(this.base, this.size, units);
  }

  private unit(index: number): Buffer {
    let u = this.units.get(index);
    if (!u) {
      u = Buffer.alloc(UNIT);
      const start = index * UNIT;
      if (start < this.base.length) this.base.copy(u, 0, start, Math.min(this.base.length, start + UNIT));
      this.units.set(index, u);
    }
    return u;
  }

  read(at: number, length: number): Buffer {
    const out = Buffer.alloc(Math.max(0, Math.min(length, this.size - at)));
    if (at < this.base.length) this.base.copy(out, 0, at, Math.min(this.base.length, at + out.length));
    for (const [index, u] of this.units) {
      const start = index * UNIT;
      if (start + UNIT <= at || start >= at + out.length) continue;
      const from = Math.max(start, at);
      const to = Math.min(start + UNIT, at + out.length);
      u.copy(out, from - at, from - start, to - start);
    }
    return out;
  }

  write(at: number, bytes: Buffer): void {
    for (let i = 0; i < bytes.length; ) {
      const pos = at + i;
      if (pos >= this.size) return;
      const index = Math.floor(pos / UNIT);
      const within = pos - index * UNIT;
      const n = Math.min(UNIT - within, bytes.length - i, this.size - pos);
      bytes.copy(this.unit(index), within, i, i + n);
      i += n;
    }
  }

  truncate(length: number): void {
    this.size = length;
    for (const index of [...this.units.keys()]) if (index * UNIT >= length) this.units.delete(index);
  }

  /** Grow by `bytes` at the end. */
  append(bytes: Buffer): void {
    const at = this.size;
    this.size += bytes.length;
    this.write(at, bytes);
  }

  /** A block source over the input (a read budget turns a looping reader into a failure, not a hang). */
  source(name: string, readBudget = Infinity): MemorySource {
    const m = new MemorySource(this.base.length > this.size ? this.base.subarray(0, this.size) : this.base, name, this.size, UNIT, readBudget);
    for (const [index, u] of this.units) {
      const b = Buffer.from(u);
      const end = this.size - index * UNIT;
      if (end < UNIT) b.fill(0, Math.max(0, end));
      m.patches.set(index, b);
    }
    return m;
  }

  /** The whole input as one buffer (for targets over small inputs, and for crash files). */
  bytes(): Buffer {
    return this.read(0, this.size);
  }

  /** The edits, compactly: size, then (unit index, 512 bytes) pairs. */
  recipe(): Buffer {
    const out = Buffer.alloc(8 + this.units.size * (4 + UNIT));
    out.writeDoubleLE(this.size, 0);
    let p = 8;
    for (const [index, u] of this.units) {
      out.writeUInt32LE(index, p);
      u.copy(out, p + 4);
      p += 4 + UNIT;
    }
    return out;
  }

  static fromRecipe(base: Buffer, recipe: Buffer): FuzzInput {
    const input = new FuzzInput(base, recipe.readDoubleLE(0));
    for (let p = 8; p + 4 + UNIT <= recipe.length; p += 4 + UNIT) input.units.set(recipe.readUInt32LE(p), Buffer.from(recipe.subarray(p + 4, p + 4 + UNIT)));
    return input;
  }
}
