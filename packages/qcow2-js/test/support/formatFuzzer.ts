/**
 * Mutation fuzzing of the vdi, vpc, vhdx and vmdk readers, in memory: valid
 * seeds (made by qemu-img, or built to the specification by the tests) are
 * mutated where it hurts (header fields, tables, descriptors, markers, the
 * file's length), optionally with their checksums mended so the mutation
 * reaches past them, then opened through the format's driver and read.
 * Every outcome must be data or a typed, user-facing error naming the image:
 * never another exception, never a hang (each memory source has a read
 * budget), never unbounded memory.
 *
 * The files a seed names (VMDK extents, a parent disk) are memory sources
 * too, found by base name; the backing policy is not in play here (it has
 * its own tests), the parsers are.
 */
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { inspect } from 'node:util';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { createChainCache, formatDriver, openImage, RawImage, type FormatOpenContext, type ImageLayer } from '../../src/index.ts';
import { chainError } from '../../src/errors.ts';
import { MemorySource } from '../../../../test/support/memorySource.ts';
import { MiB, prng } from './qemu.ts';

export interface FormatSeed {
  name: string;
  format: string;
  /** The file the image is opened by. */
  top: string;
  /** Every file by base name, the top included. */
  files: Map<string, Buffer>;
  /** Offsets in the top file worth mutating. */
  interesting: number[];
  /** Mend checksums after a mutation (so the mutation reaches the structures behind them). */
  mend?: (file: MutableFile) => void;
}

const U32 = [0, 1, 2, 3, 4, 6, 7, 0x1ff, 0x200, 0x1000, 0x10000, 0x100000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const U64 = [0n, 1n, 0x200n, 0x100000n, 1n << 32n, 1n << 53n, 1n << 62n, 0xffffffffffffffffn];

/** A mutated copy of a seed file: the fuzz engine's input (copy-on-write 512-byte units). */
export { FuzzInput as MutableFile } from '../../../../test/fuzz/engine/input.ts';
import { FuzzInput as MutableFile } from '../../../../test/fuzz/engine/input.ts';

export interface Mutation {
  file: MutableFile;
  description: string;
}

/** One to four mutations of the seed's top file. */
export function mutateSeed(seed: FormatSeed, rnd: () => number): Mutation {
  const file = new MutableFile(seed.files.get(seed.top) as Buffer);
  const steps: string[] = [];
  const count = 1 + (rnd() % 4);
  for (let n = 0; n < count; n++) {
    const where = () => (rnd() % 10 < 8 && seed.interesting.length ? seed.interesting[rnd() % seed.interesting.length] : rnd() % Math.max(1, file.size));
    const kind = rnd() % 10;
    const le = rnd() % 2 === 0;
    if (kind <= 2) {
      const at = where() + (rnd() % 8);
      if (at < file.size) {
        const bit = rnd() % 8;
        const b = file.read(at, 1);
        b[0] ^= 1 << bit;
        file.write(at, b);
        steps.push(`flip bit ${bit} at ${at}`);
      }
    } else if (kind <= 5) {
      const at = where();
      if (at + 4 <= file.size) {
        const v = (rnd() % 3 === 0 ? rnd() : U32[rnd() % U32.length]) >>> 0;
        const b = Buffer.alloc(4);
        if (le) b.writeUInt32LE(v);
        else b.writeUInt32BE(v);
        file.write(at, b);
        steps.push(`u32${le ? 'le' : 'be'} ${v} at ${at}`);
      }
    } else if (kind <= 7) {
      const at = where();
      if (at + 8 <= file.size) {
        let v = U64[rnd() % U64.length];
        if (rnd() % 3 === 0) v = BigInt(file.size + (rnd() % 4) * 0x10000) & ~0x1ffn;
        const b = Buffer.alloc(8);
        if (le) b.writeBigUInt64LE(v);
        else b.writeBigUInt64BE(v);
        file.write(at, b);
        steps.push(`u64${le ? 'le' : 'be'} 0x${v.toString(16)} at ${at}`);
      }
    } else if (kind === 8 && rnd() % 2) {
      const length = rnd() % Math.max(1, file.size);
      file.truncate(length);
      steps.push(`truncate to ${length}`);
    } else {
      const extra = Buffer.alloc(rnd() % 70000);
      for (let i = 0; i < extra.length; i++) extra[i] = rnd() & 0xff;
      const at = file.size;
      file.size += extra.length;
      file.write(at, extra);
      steps.push(`append ${extra.length} random bytes`);
    }
  }
  if (seed.mend && rnd() % 2) {
    seed.mend(file);
    steps.push('checksums mended');
  }
  return { file, description: steps.join('; ') || 'unchanged' };
}

export type CaseOutcome = { kind: 'read'; bytes: number } | { kind: 'refused'; message: string } | { kind: 'crash'; error: unknown };

const READ_WINDOW = 2 * MiB;
const READ_CHUNK = 256 * 1024;
/** Reads of one memory source per case: a reader that loops hits this instead of hanging. */
const READ_BUDGET = 20_000;

function memory(files: Map<string, Buffer>, name: string, data?: Buffer): MemorySource {
  return new MemorySource(data ?? (files.get(name) as Buffer), name, undefined, 512, READ_BUDGET);
}

/** A context like the chain's, over memory sources (the top file's neighbours by base name). */
export function memoryContext(seed: FormatSeed, name: string, opened: MemorySource[]): FormatOpenContext {
  const find = (path: string, image: string): MemorySource => {
    const buf = seed.files.get(basename(path));
    if (!buf) throw chainError(image, `cannot open ${JSON.stringify(path)}: ENOENT`);
    const source = memory(seed.files, basename(path), buf);
    opened.push(source);
    return source;
  };
  return {
    name,
    spec: { format: seed.format, filename: `/fuzz/${seed.top}` },
    cache: createChainCache(4 * MiB, 4 * MiB),
    maxReadBytes: 64 * MiB,
    openBacking: async (ref, spec) => {
      const file = find(spec.filename, ref.image);
      const driver = formatDriver(spec.format ?? seed.format);
      if (!driver?.open) return new RawImage(file);
      return driver.open(file, { ...memoryContext(seed, spec.filename, opened), spec });
    },
    openDataFile: async (ref) => {
      throw chainError(ref.image, 'no data files in the fuzzer');
    },
    openExtent: async (ref) => find(ref.path, ref.image),
  };
}

/** Open and read a (mutated) image in memory: its first megabytes, a few random places, the extent map, then refresh and read again. */
export async function runFormatCase(seed: FormatSeed, file: MutableFile, name: string, rnd: () => number): Promise<CaseOutcome> {
  let image: ImageLayer | undefined;
  let bytes = 0;
  const opened: MemorySource[] = [];
  try {
    const driver = formatDriver(seed.format);
    if (!driver?.open) throw new Error(`no driver for ${seed.format}`);
    image = await driver.open(file.source(seed.top, READ_BUDGET), memoryContext(seed, name, opened));
    const readAll = async (img: ImageLayer) => {
      const end = Math.min(img.size, READ_WINDOW);
      for (let off = 0; off < end; off += READ_CHUNK) bytes += (await img.read(off, Math.min(READ_CHUNK, end - off))).length;
      for (let i = 0; i < 4 && img.size > 0; i++) {
        const off = Math.floor((rnd() / 0x1_0000_0000) * img.size);
        const len = Math.min(img.size - off, 1 + (rnd() % 200000));
        bytes += (await img.read(off, len)).length;
      }
      for (let off = 0, n = 0; off < end && n < 10000; n++) off += (await img.extent(off, end - off)).length;
    };
    await readAll(image);
    await image.refresh();
    await readAll(image);
    return { kind: 'read', bytes };
  } catch (err) {
    if (err instanceof Error && (err as { userFacing?: unknown }).userFacing === true) return { kind: 'refused', message: err.message };
    return { kind: 'crash', error: err };
  } finally {
    await image?.close().catch(() => undefined);
  }
}

export type Verdict = 'same' | 'differ' | 'only-qemu' | 'only-guestlens' | 'neither' | 'skipped';

/**
 * The mutated top file (and its unchanged neighbours) written to `dir`, read
 * by guestlens (openImage, real files) and by `qemu-img convert`: where both
 * read it, the bytes must agree.
 */
export async function differentialCase(dir: string, seed: FormatSeed, data: Buffer, caseName: string): Promise<Verdict> {
  const caseDir = join(dir, caseName);
  await execa('mkdir', ['-p', caseDir]);
  for (const [name, buf] of seed.files) await writeFile(join(caseDir, name), name === seed.top ? data : buf);
  const image = join(caseDir, seed.top);
  const out = join(caseDir, 'qemu.raw');
  try {
    // A mutated size may claim terabytes; qemu-img would spend the run converting them.
    const info = await execa('qemu-img', ['info', '--output=json', '-f', seed.format, image], { reject: false, timeout: 20_000 });
    if (info.exitCode === 0 && (JSON.parse(info.stdout) as { 'virtual-size': number })['virtual-size'] > 64 * MiB) return 'skipped';
    let ours: Buffer | undefined;
    try {
      const source = await openImage(image, { format: seed.format });
      try {
        if (source.size > 64 * MiB) return 'skipped';
        // QEMU reads a differencing VHD as if it had no parent (and refuses a differencing VHDX): nothing to compare.
        if (source.backing && (seed.format === 'vpc' || seed.format === 'vhdx')) return 'skipped';
        ours = await source.read(0, source.size);
      } finally {
        await source.close();
      }
    } catch (err) {
      if ((err as { userFacing?: unknown }).userFacing !== true) throw err;
    }
    const qemu = await execa('qemu-img', ['convert', '-f', seed.format, '-O', 'raw', image, out], { reject: false, timeout: 20_000 });
    if (qemu.exitCode !== 0) return ours ? 'only-guestlens' : 'neither';
    if (!ours) return 'only-qemu';
    return (await readFile(out)).equals(ours) ? 'same' : 'differ';
  } finally {
    await rm(caseDir, { recursive: true, force: true });
  }
}

/** Bound of one case: under load a case may be slow, but not this slow (a hang). */
const CASE_LIMIT_MS = 5000;
/** Growth of memory outside the V8 heap (Buffers) tolerated over a whole run. */
const MEMORY_BOUND = 512 * MiB;

/**
 * `cases` mutated images over `seeds`: each reads or is refused with a typed
 * error naming the image, within time and memory bounds; every 50th also
 * through real files against qemu-img. Returns the outcome counts (both
 * outcomes must occur, or the mutations do not reach the parser).
 */
export async function fuzzSeeds(seeds: FormatSeed[], cases: number, dir: string, runSeed: number): Promise<{ read: number; refused: number; verdicts: Partial<Record<Verdict, number>> }> {
  const rnd = prng(runSeed);
  const counts = { read: 0, refused: 0 };
  const verdicts: Partial<Record<Verdict, number>> = {};
  for (const seed of seeds) {
    const unmutated = await runFormatCase(seed, new MutableFile(seed.files.get(seed.top) as Buffer), `unmutated-${seed.name}`, rnd);
    assert.equal(unmutated.kind, 'read', `seed ${seed.name} does not read unmutated: ${inspect(unmutated)}`);
  }
  const start = process.memoryUsage().arrayBuffers;
  for (let n = 0; n < cases; n++) {
    const seed = seeds[n % seeds.length];
    const { file, description } = mutateSeed(seed, rnd);
    const name = `fuzz-${n}.${seed.format}`;
    const started = Date.now();
    const outcome = await runFormatCase(seed, file, name, rnd);
    const elapsed = Date.now() - started;
    const context = `case ${n} of run seed ${runSeed} (GUESTLENS_FUZZ_SEED=${runSeed}), seed ${seed.name}: ${description}`;
    if (outcome.kind === 'crash') assert.fail(`${context}\nthrew an untyped error: ${inspect(outcome.error)}`);
    if (outcome.kind === 'refused') assert.ok(outcome.message.includes(name) || outcome.message.includes('/fuzz/'), `${context}\nerror does not name the image: ${outcome.message}`);
    assert.ok(elapsed < CASE_LIMIT_MS, `${context}\ntook ${elapsed} ms`);
    if (outcome.kind === 'read') counts.read++;
    else counts.refused++;
    if (n % 50 === 0) {
      const verdict = await differentialCase(dir, seed, file.bytes(), `case-${n}`);
      verdicts[verdict] = (verdicts[verdict] ?? 0) + 1;
      assert.notEqual(verdict, 'differ', `${context}\nguestlens and qemu-img both read it, with different bytes`);
    }
    const grown = process.memoryUsage().arrayBuffers - start;
    assert.ok(grown < MEMORY_BOUND, `${context}\nmemory outside the heap grew by ${grown} bytes`);
  }
  assert.ok(counts.read > cases / 20 && counts.refused > cases / 20, `outcomes ${JSON.stringify(counts)}`);
  return { ...counts, verdicts };
}
