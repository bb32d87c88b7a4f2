/**
 * The mutations: bit flips, bytes set to interesting values, 16/32/64-bit
 * boundary values in either byte order, runs copied from elsewhere in the
 * input or spliced in from another corpus entry, truncation and growth.
 * Most land in the seed's hot ranges (the structures a parser reads, found
 * by the target from a real image), the rest anywhere: a disk image is
 * mostly file data no parser looks at.
 */
import type { Prng } from '../../support/prng.ts';
import type { FuzzInput } from './input.ts';

/** [offset, length] of a structure worth mutating. */
export type HotRange = readonly [number, number];

const U8 = [0, 1, 0x7f, 0x80, 0xff];
const U16 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x1ff, 0x200, 0x7fff, 0x8000, 0xffff];
const U32 = [0, 1, 2, 3, 4, 7, 8, 0x1ff, 0x200, 0x1000, 0x10000, 0x100000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const U64 = [0n, 1n, 0x200n, 0x10000n, 1n << 32n, (1n << 53n) - 1n, 1n << 53n, 1n << 62n, 1n << 63n, 0xffffffffffffffffn];

export interface MutateContext {
  rnd: Prng;
  hot: readonly HotRange[];
  /** Other inputs to splice from. */
  donor: () => FuzzInput | undefined;
  /** Largest input worth making. */
  maxSize: number;
}

function position(input: FuzzInput, c: MutateContext, width: number): number {
  const { rnd, hot } = c;
  if (hot.length && rnd.below(10) < 8) {
    const [offset, length] = hot[rnd.below(hot.length)];
    return Math.min(input.size - width, offset + rnd.below(Math.max(1, length)));
  }
  return rnd.below(Math.max(1, input.size - width + 1));
}

function value(width: 2 | 4 | 8, c: MutateContext, input: FuzzInput): Buffer {
  const { rnd } = c;
  const b = Buffer.alloc(width);
  const le = rnd.below(2) === 0;
  if (width === 2) {
    const v = rnd.below(4) === 0 ? rnd.below(0x10000) : U16[rnd.below(U16.length)];
    if (le) b.writeUInt16LE(v);
    else b.writeUInt16BE(v);
  } else if (width === 4) {
    // Sizes and offsets near the input's own length reach the edge cases of range checks.
    const choice = rnd.below(6);
    const v = choice === 0 ? rnd.next() : choice === 1 ? (input.size + rnd.below(3) * UNIT_STEP - UNIT_STEP) >>> 0 : U32[rnd.below(U32.length)];
    if (le) b.writeUInt32LE(v >>> 0);
    else b.writeUInt32BE(v >>> 0);
  } else {
    let v = rnd.below(3) === 0 ? BigInt(input.size + rnd.below(4) * 0x10000) & ~0x1ffn : U64[rnd.below(U64.length)];
    v &= 0xffffffffffffffffn;
    if (le) b.writeBigUInt64LE(v);
    else b.writeBigUInt64BE(v);
  }
  return b;
}
const UNIT_STEP = 512;

/** Mutate `input` in place, 1..5 steps; returns what was done (for reports) and where. */
export function mutate(input: FuzzInput, c: MutateContext): { steps: string[]; touched: number[] } {
  const { rnd } = c;
  const steps: string[] = [];
  const touched: number[] = [];
  const count = 1 + rnd.below(5);
  for (let n = 0; n < count && input.size > 0; n++) {
    const kind = rnd.below(20);
    if (kind < 5) {
      const at = position(input, c, 1);
      const bit = rnd.below(8);
      const b = input.read(at, 1);
      b[0] ^= 1 << bit;
      input.write(at, b);
      steps.push(`flip bit ${bit} at ${at}`);
      touched.push(at);
    } else if (kind < 7) {
      const at = position(input, c, 1);
      const v = rnd.below(3) === 0 ? rnd.below(256) : U8[rnd.below(U8.length)];
      input.write(at, Buffer.of(v));
      steps.push(`byte ${v} at ${at}`);
      touched.push(at);
    } else if (kind < 15) {
      const width = ([2, 4, 4, 8] as const)[rnd.below(4)];
      if (input.size < width) continue;
      // Fields are aligned far more often than not.
      const at = Math.max(0, position(input, c, width) & ~(rnd.below(4) ? width - 1 : 0));
      const v = value(width, c, input);
      input.write(at, v);
      steps.push(`u${width * 8} ${v.toString('hex')} at ${at}`);
      touched.push(at);
    } else if (kind < 17) {
      // A run copied from elsewhere in this input, or from another input.
      const donor = rnd.below(2) ? c.donor() : undefined;
      const from = donor ?? input;
      const length = 1 + rnd.below(Math.min(1024, Math.max(1, from.size)));
      const src = rnd.below(Math.max(1, from.size - length + 1));
      const at = position(input, c, Math.min(length, input.size));
      input.write(at, from.read(src, length));
      steps.push(`copy ${length} bytes from ${donor ? 'another input' : 'itself'} at ${src} to ${at}`);
      touched.push(at);
    } else if (kind < 19) {
      const length = rnd.below(2) ? rnd.below(input.size) : Math.max(0, input.size - 1 - rnd.below(4096));
      input.truncate(length);
      steps.push(`truncate to ${length}`);
    } else if (input.size < c.maxSize) {
      const extra = rnd.below(2) ? Buffer.alloc(rnd.below(70_000)) : rnd.bytes(rnd.below(4096));
      input.append(extra);
      steps.push(`append ${extra.length} bytes`);
    }
  }
  return { steps, touched };
}
