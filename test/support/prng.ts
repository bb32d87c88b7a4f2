/**
 * The tests' one pseudo-random generator (xorshift32): deterministic, so a
 * failing fuzz case is rebuilt exactly from the seed it prints.
 */
export class Prng {
  private x: number;

  constructor(seed: number) {
    this.x = seed >>> 0 || 0x9e3779b9;
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    let x = this.x;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.x = x >>> 0;
    return this.x;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return this.next() % n;
  }

  /** A number in [0, 1). */
  float(): number {
    return this.next() / 0x1_0000_0000;
  }

  /** `n` random bytes. */
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
}

/** The generator as a function returning 32-bit unsigned integers. */
export function prng(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.next();
}
