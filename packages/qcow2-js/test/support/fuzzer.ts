/**
 * Mutation fuzzing of qcow2 images: valid seeds made by qemu-img/qemu-io are
 * mutated where it hurts (header fields, extensions, L1 and L2 entries,
 * compressed data, the file's length), then opened and read in memory. Every
 * outcome must be data or a typed, user-facing error: never another
 * exception, never a hang, never an unbounded allocation.
 *
 * Used by fuzz.test.ts (a few thousand cases) and `pnpm -s fuzz --target qcow2` (long runs).
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { join } from 'node:path';
import { openImage, Qcow2Image, RawImage } from '../../src/index.ts';
import { MemorySource } from '../../../../test/support/memorySource.ts';
import { makeRaw, MiB, prng, qemuImg, qemuIo } from './qemu.ts';

export interface Seed {
  name: string;
  image: Buffer;
  /** Raw bytes of the backing file, for seeds that have one. */
  backing?: Buffer;
  /** Offsets of fields worth mutating: header fields, extension headers, L1 and L2 entries, compressed data. */
  interesting: number[];
}

/** Build the seed images in `dir` with the real QEMU tools. */
export async function makeSeeds(dir: string): Promise<Seed[]> {
  const source = join(dir, 'seed-source.raw');
  await makeRaw(source, 2 * MiB, [[0, 700 * 1024], [MiB + 333, 600 * 1024]], 99);
  const specs: Array<{ name: string; args: string[]; io?: string[]; backing?: boolean }> = [
    { name: 'v3-64k', args: ['-o', 'cluster_size=65536'], io: ['write -z 200000 70000', 'discard 1M 64k', 'write -P 0x11 1900000 5000'] },
    { name: 'v2-4k', args: ['-o', 'compat=0.10,cluster_size=4096'], io: ['write -P 0x22 12345 6789'] },
    { name: 'v3-512', args: ['-o', 'cluster_size=512'], io: ['write -z 4000 2000'] },
    { name: 'zlib-4k', args: ['-c', '-o', 'cluster_size=4096'] },
    { name: 'zstd-64k', args: ['-c', '-o', 'compression_type=zstd'] },
    { name: 'extl2-16k', args: ['-o', 'extended_l2=on,cluster_size=16384'], io: ['write -P 0x33 5000 3000', 'write -z 40000 20000', 'discard 65536 16384'] },
  ];
  const seeds: Seed[] = [];
  for (const spec of specs) {
    const path = join(dir, `seed-${spec.name}.qcow2`);
    await qemuImg(['convert', '-q', '-O', 'qcow2', ...spec.args, source, path]);
    if (spec.io) await qemuIo(path, spec.io);
    const image = await readFile(path);
    seeds.push({ name: spec.name, image, interesting: interestingOffsets(image) });
  }
  // A layer over a backing file: mutations reach the backing reads too.
  const base = join(dir, 'seed-base.qcow2');
  const top = join(dir, 'seed-top.qcow2');
  await qemuImg(['convert', '-q', '-O', 'qcow2', source, base]);
  await qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', '-F', 'qcow2', '-b', base, top]);
  await qemuIo(top, ['write -P 0x44 3000 5000', 'write -z 70000 3000']);
  const topImage = await readFile(top);
  seeds.push({ name: 'extl2-over-backing', image: topImage, backing: await readFile(source), interesting: interestingOffsets(topImage) });
  return seeds;
}

/** Where the metadata of a valid image lives. */
export function interestingOffsets(image: Buffer): number[] {
  const offsets: number[] = [];
  for (let p = 0; p < 112; p += 4) offsets.push(p);
  const version = image.readUInt32BE(4);
  const clusterSize = 2 ** image.readUInt32BE(20);
  const headerLength = version >= 3 ? image.readUInt32BE(100) : 72;
  const extended = version >= 3 && (image.readBigUInt64BE(72) & 16n) !== 0n;
  for (let p = headerLength; p + 8 <= Math.min(clusterSize, image.length); ) {
    offsets.push(p, p + 4);
    const type = image.readUInt32BE(p);
    const len = image.readUInt32BE(p + 4);
    if (type === 0) break;
    p += 8 + Math.ceil(len / 8) * 8;
  }
  const l1Size = image.readUInt32BE(36);
  const l1Offset = Number(image.readBigUInt64BE(40));
  const entryBytes = extended ? 16 : 8;
  for (let i = 0; i < l1Size && l1Offset + i * 8 + 8 <= image.length; i++) {
    offsets.push(l1Offset + i * 8);
    const l2 = Number(image.readBigUInt64BE(l1Offset + i * 8) & 0x00fffffffffffe00n);
    if (l2 === 0 || l2 + clusterSize > image.length) continue;
    for (let j = 0; j < clusterSize / entryBytes; j++) {
      const at = l2 + j * entryBytes;
      const entry = image.readBigUInt64BE(at);
      if (entry === 0n && (!extended || image.readBigUInt64BE(at + 8) === 0n)) continue;
      offsets.push(at, at + 4);
      if (extended) offsets.push(at + 8, at + 12);
      if (entry & (1n << 62n)) {
        // The compressed bytes themselves.
        const bits = 62 - (Math.log2(clusterSize) - 8);
        offsets.push(Number(entry & ((1n << BigInt(bits)) - 1n)));
      }
    }
  }
  return offsets.filter((o) => o < image.length);
}

const INTERESTING_U32 = [0, 1, 7, 8, 9, 21, 22, 0x7fffffff, 0x80000000, 0xffffffff, 512, 65536, 104, 112];
const INTERESTING_U64 = [0n, 1n, 0x200n, 0x10000n, 1n << 32n, 1n << 53n, (1n << 56n) - 512n, 1n << 62n, 1n << 63n, 0xffffffffffffffffn];

export interface Mutation {
  data: Buffer;
  description: string;
}

/** One to four mutations of `seed`, chosen by `rnd`. */
export function mutate(seed: Seed, rnd: () => number): Mutation {
  let data = Buffer.from(seed.image);
  const steps: string[] = [];
  const count = 1 + (rnd() % 4);
  for (let n = 0; n < count; n++) {
    const where = () => (rnd() % 10 < 8 && seed.interesting.length ? seed.interesting[rnd() % seed.interesting.length] : rnd() % data.length);
    const kind = rnd() % 8;
    if (kind <= 2) {
      const at = where() + (rnd() % 8);
      if (at < data.length) {
        const bit = rnd() % 8;
        data[at] ^= 1 << bit;
        steps.push(`flip bit ${bit} at ${at}`);
      }
    } else if (kind <= 4) {
      const at = where();
      if (at + 4 <= data.length) {
        const v = rnd() % 3 === 0 ? rnd() : INTERESTING_U32[rnd() % INTERESTING_U32.length];
        data.writeUInt32BE(v >>> 0, at);
        steps.push(`u32 ${v >>> 0} at ${at}`);
      }
    } else if (kind <= 6) {
      const at = where();
      if (at + 8 <= data.length) {
        let v = INTERESTING_U64[rnd() % INTERESTING_U64.length];
        if (rnd() % 3 === 0) v = (BigInt(data.length) + BigInt(rnd() % 4) * 0x10000n) & ~0x1ffn;
        // Keep the entry's flag bits sometimes, so the mutated offset is still taken as one.
        if (rnd() % 2) v |= data.readBigUInt64BE(at) & (0xffn << 56n);
        data.writeBigUInt64BE(v & 0xffffffffffffffffn, at);
        steps.push(`u64 0x${v.toString(16)} at ${at}`);
      }
    } else if (rnd() % 2) {
      const length = rnd() % data.length;
      data = data.subarray(0, length);
      steps.push(`truncate to ${length}`);
    } else {
      const extra = Buffer.alloc(rnd() % 70000);
      for (let i = 0; i < extra.length; i++) extra[i] = rnd() & 0xff;
      data = Buffer.concat([data, extra]);
      steps.push(`append ${extra.length} random bytes`);
    }
  }
  return { data, description: steps.join('; ') || 'unchanged' };
}

export type CaseOutcome = { kind: 'read'; bytes: number } | { kind: 'refused'; message: string } | { kind: 'crash'; error: unknown };

/** Bytes of a mutated image read at most: its size field may claim petabytes. */
const READ_WINDOW = 3 * MiB;
const READ_CHUNK = 256 * 1024;

/**
 * Open and read a (mutated) image in memory: the first megabytes of the disk,
 * a few random places, the extent map, then refresh and read again.
 */
export async function runCase(data: Buffer, backing: Buffer | undefined, name: string, rnd: () => number): Promise<CaseOutcome> {
  let image: Qcow2Image | undefined;
  let bytes = 0;
  try {
    image = await Qcow2Image.open(new MemorySource(data, name), { name });
    if (backing) image.backing = new RawImage(new MemorySource(backing, `${name}.backing`));
    const readAll = async (img: Qcow2Image) => {
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

const DIFFERENTIAL_MAX_SIZE = 64 * MiB;

/**
 * Write a (mutated) image to `dir/name` and read it both with guestlens
 * (openImage: real files, real I/O, backing files resolved) and with
 * `qemu-img convert`. Where both read it the bytes must agree; where one
 * refuses it, that is reported (guestlens is stricter than QEMU about
 * clusters past the end of the file, for one). Untyped errors are thrown.
 */
export async function differential(dir: string, name: string, data: Buffer, withQemu = true): Promise<Verdict> {
  const image = join(dir, name);
  const out = join(dir, `${name}.raw`);
  await writeFile(image, data);
  try {
    let ours: Buffer | undefined;
    try {
      const source = await openImage(image, { format: 'qcow2' });
      try {
        if (source.size > DIFFERENTIAL_MAX_SIZE) return 'skipped';
        ours = await source.read(0, source.size);
      } finally {
        await source.close();
      }
    } catch (err) {
      if ((err as { userFacing?: unknown }).userFacing !== true) throw err;
    }
    if (!withQemu) return 'skipped';
    const qemu = await execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', image, out], { reject: false, timeout: 20_000 });
    if (qemu.exitCode !== 0) return ours ? 'only-guestlens' : 'neither';
    if (!ours) return 'only-qemu';
    return (await readFile(out)).equals(ours) ? 'same' : 'differ';
  } finally {
    await rm(out, { force: true });
    await rm(image, { force: true });
  }
}
