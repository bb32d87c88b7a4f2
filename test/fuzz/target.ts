/**
 * What a fuzz target is. The entry has Jazzer.js's shape (`fuzz(data)`,
 * which throws only on a finding), taking a FuzzInput instead of a Buffer
 * so a 100 MiB image costs its edits; a Jazzer.js harness is
 * `(data) => target.fuzz(new FuzzInput(data))`. We run our own engine
 * (engine/) because the prebuilt addon of @jazzer.js/core 4.0.0 needs
 * glibc 2.38 and Debian 12 has 2.36; see docs/fuzzing.md.
 */
import { isUserFacing } from '@guestlens/block';
import type { FuzzInput } from './engine/input.ts';
import type { Prng } from '../support/prng.ts';
import type { HotRange } from './engine/mutate.ts';

export interface Seed {
  name: string;
  data: Buffer;
  /** Where the structures a parser reads lie in `data`: most mutations go there. */
  hot?: HotRange[];
}

export interface FuzzTarget {
  name: string;
  about: string;
  /**
   * Seeds made at run time by the real tools (mkfs.*, qemu-img, ...) in
   * `dir`; `quick` asks for the few smallest, for the bounded in-suite run.
   */
  seeds(dir: string, options: { quick: boolean }): Promise<Seed[]>;
  /** Read the input the way a user's command does; throws only on a finding. */
  fuzz(input: FuzzInput): Promise<void>;
  /** A mutation that knows the format (libFuzzer's custom mutator), used for half of the cases; says what it did. */
  mutate?(input: FuzzInput, rnd: Prng): string;
  /** Re-stamp checksums of the structures at `touched`, so a mutation reaches the parser behind the check. */
  mend?(input: FuzzInput, touched: number[]): void;
}

/**
 * A failure is any error that is not one of ours about the input (a
 * GuestlensError or branded error with `userFacing`): a TypeError, a
 * RangeError from Buffer, a read past the read budget (a loop).
 */
export async function typedOnly<T>(step: () => Promise<T>): Promise<T | undefined> {
  try {
    return await step();
  } catch (err) {
    if (isUserFacing(err)) return undefined;
    throw err;
  }
}
