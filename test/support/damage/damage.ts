/**
 * The generated-damage corpus (issue 18): for every reader without a public
 * corpus, a populated base image made by the real mkfs and filled through the
 * kernel, ntfs-3g or mtools, then damaged on a copy in one of three ways:
 *
 *   edit      an edit made with the filesystem's own tool where one exists
 *             (debugfs -w, xfs_db -x); byte edits at places located with
 *             the tools (dump-super, dump-tree, ntfsinfo) where none does
 *   truncate  the image cut at a structure boundary
 *   bitflip   seeded bit flips inside one header, table or directory block
 *
 * Images are code, not blobs: a case is a recipe (reader, technique, name,
 * a function making it from the base), rebuilt identically from its seed.
 * One file per filesystem (ext4, xfs, btrfs, ntfs, fat) and one for the
 * image formats (qcow2, vmdk, vhdx).
 */
import { execa } from 'execa';
import { closeSync, openSync, readSync, statSync, truncateSync, writeSync } from 'node:fs';
import { Prng } from '../prng.ts';

export { copySparse } from '../kernel.ts';

export type Technique = 'edit' | 'truncate' | 'bitflip';

export interface DamageCase {
  /** The reader the case is aimed at: ext4, xfs-v5, fat16, qcow2... */
  reader: string;
  technique: Technique;
  /** Unique in the corpus: reader/technique-what. */
  name: string;
  /** Damage `image` (a private copy of the reader's base) in place. */
  damage(image: string): Promise<void>;
  /** Also list the tree (ls -lR) of this one. */
  ls?: boolean;
}

export interface ReaderCorpus {
  reader: string;
  /** The populated, undamaged image the cases start from. */
  base: string;
  /**
   * Undefined when the kernel mounting a copy is the oracle for this reader,
   * else why not (no vfat/ntfs3 in this kernel, an image container...).
   */
  noKernel?: string;
  cases: DamageCase[];
  /** The image format to name on the command line (--format; raw unless said). */
  format?: string;
}

/** A reader's corpus, or why it cannot be made here (a missing tool). */
export type ReaderFactory = (dir: string) => Promise<ReaderCorpus | { unavailable: string }>;

export function readAt(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

export function writeAt(file: string, offset: number, data: Buffer): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** `count` seeded bit flips inside [offset, offset + length). */
export function flipBits(file: string, offset: number, length: number, seed: number, count = 8): void {
  const p = new Prng(seed);
  const region = readAt(file, offset, length);
  for (let i = 0; i < count; i++) {
    const bit = p.below(length * 8);
    region[bit >> 3] ^= 1 << (bit & 7);
  }
  writeAt(file, offset, region);
}

export function truncateTo(file: string, size: number): void {
  truncateSync(file, Math.max(0, Math.min(size, statSync(file).size)));
}

/** Little-endian field writers for byte-level edits. */
export function putLe(file: string, offset: number, width: 1 | 2 | 4 | 8, value: number | bigint): void {
  const b = Buffer.alloc(width);
  if (width === 8) b.writeBigUInt64LE(BigInt(value));
  else b.writeUIntLE(Number(BigInt.asUintN(width * 8, BigInt(value))), 0, width);
  writeAt(file, offset, b);
}

/** Run a tool; throw with its output when it fails. */
export async function tool(file: string, args: string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<string> {
  const r = await execa(file, args, { reject: false, env: options.env, input: options.input });
  if (r.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} failed (exit ${r.exitCode}): ${r.stderr || r.stdout}`);
  return `${r.stdout}\n${r.stderr}`;
}

export async function haveTools(names: string[]): Promise<string | undefined> {
  for (const t of names) {
    if ((await execa('which', [t], { reject: false })).exitCode !== 0) return `${t} is not installed`;
  }
  return undefined;
}

/** Truncation cases at the named boundaries (deduplicated, inside the image, ascending). */
export function truncations(reader: string, boundaries: Array<[string, number]>, size: number, lsEvery = 3): DamageCase[] {
  const seen = new Set<number>();
  return boundaries
    .filter(([, at]) => at > 0 && at < size && !seen.has(at) && seen.add(at))
    .map(([what, at], i) => ({ reader, technique: 'truncate' as const, name: `${reader}/truncate-${what}@${at}`, ls: i % lsEvery === 0, damage: async (image: string) => truncateTo(image, at) }));
}

/** Bit-flip cases: each region flipped with `seeds` different seeds. */
export function bitflips(reader: string, regions: Array<[string, number, number]>, seeds: number[] = [1, 2], count = 8): DamageCase[] {
  const out: DamageCase[] = [];
  for (const [what, offset, length] of regions) {
    if (length <= 0) continue;
    for (const seed of seeds) {
      out.push({ reader, technique: 'bitflip', name: `${reader}/flip-${what}#${seed}`, ls: seed === seeds[0], damage: async (image) => flipBits(image, offset, length, seed * 7919 + offset, count) });
    }
  }
  return out;
}
