/**
 * Building qcow2 fixtures with the real QEMU tools, and the oracle: the
 * guest bytes of an image as `qemu-img convert -O raw` writes them, compared
 * with ours chunk by chunk through SHA-256 digests.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openImage, type OpenImageOptions } from '../../src/index.ts';
import { type BlockSource } from '@guestlens/block';
import { guardImages } from '../../../../test/support/imageGuard.ts';
import { sh } from '../../../../test/support/run.ts';
import { scratchDir } from '../../../../test/support/scratch.ts';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export async function qemuImg(args: string[]): Promise<string> {
  return sh('qemu-img', args);
}

/** Run qemu-io commands (`write -P 0x11 0 64k`, `discard ...`) against an image, read-write. */
export async function qemuIo(image: string, commands: string[], format = 'qcow2'): Promise<void> {
  const out = await sh('qemu-io', ['-f', format, ...commands.flatMap((c) => ['-c', c]), image]);
  // qemu-io reports failed commands on stdout and still exits 0.
  assert.doesNotMatch(out, /failed|error/i, `qemu-io ${commands.join('; ')} on ${image}:\n${out}`);
}

export interface QemuInfo {
  'virtual-size': number;
  format: string;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  'cluster-size'?: number;
  filename: string;
  'format-specific'?: { type: string; data: Record<string, unknown> };
}

export async function qemuInfo(image: string, format?: string): Promise<QemuInfo> {
  return JSON.parse(await qemuImg(['info', '--output=json', ...(format ? ['-f', format] : []), image])) as QemuInfo;
}

export async function qemuInfoChain(image: string): Promise<QemuInfo[]> {
  return JSON.parse(await qemuImg(['info', '--output=json', '--backing-chain', image])) as QemuInfo[];
}

export { prng } from '../../../../test/support/prng.ts';
import { prng } from '../../../../test/support/prng.ts';

const WORDS = ['guest', 'disk', 'cluster', 'qcow2', 'backing', 'the', 'of', 'kernel', 'inode', 'block', 'refcount', 'sector', '\n', 'lorem', 'ipsum', '0000'];

/**
 * Guest-like content: 4 KiB blocks that are random (incompressible), text
 * (compressible), one repeated byte, or zeros, chosen by the PRNG.
 */
export function guestLikeData(length: number, seed: number): Buffer {
  const rnd = prng(seed);
  const buf = Buffer.alloc(length);
  for (let block = 0; block < length; block += 4096) {
    const end = Math.min(length, block + 4096);
    const mode = rnd() % 8;
    if (mode <= 1) {
      for (let i = block; i < end; i += 4) buf.writeUInt32LE(rnd(), Math.min(i, end - 4));
    } else if (mode <= 4) {
      let i = block;
      while (i < end) {
        const w = WORDS[rnd() % WORDS.length];
        i += buf.write(`${w} `, i, end - i, 'latin1');
      }
    } else if (mode === 5) {
      buf.fill(rnd() & 0xff, block, end);
    }
  }
  return buf;
}

/** A raw file of `size` bytes, sparse except the regions given ([offset, length] filled with guest-like data). */
export async function makeRaw(path: string, size: number, regions: Array<[number, number]>, seed = 1): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.truncate(size);
    let s = seed;
    for (const [offset, length] of regions) {
      const data = guestLikeData(length, s++);
      await fh.write(data, 0, data.length, offset);
    }
  } finally {
    await fh.close();
  }
}

/** What the overlay package writes: a qcow2 overlay whose backing is a json: name with locking off. */
export async function makeJsonOverlay(image: string, format: string, overlay: string): Promise<void> {
  const json = `json:${JSON.stringify({ driver: format, file: { driver: 'file', filename: image, locking: 'off' } })}`;
  await qemuImg(['create', '-q', '-f', 'qcow2', '-F', format, '-b', json, overlay]);
}

const ZERO_CHUNK_DIGESTS = new Map<number, string>();

function digest(chunk: Buffer): string {
  // The digest of an all-zero chunk is a constant; recognising zeros by comparison is much faster than hashing them.
  if (chunk.length <= ZERO.length && chunk.equals(ZERO.subarray(0, chunk.length))) {
    let d = ZERO_CHUNK_DIGESTS.get(chunk.length);
    if (!d) {
      d = createHash('sha256').update(chunk).digest('hex');
      ZERO_CHUNK_DIGESTS.set(chunk.length, d);
    }
    return d;
  }
  return createHash('sha256').update(chunk).digest('hex');
}

const CHUNK = 4 * MiB;
const ZERO = Buffer.alloc(CHUNK);

/**
 * Compare the whole virtual disk of an opened source with a raw file, chunk
 * by chunk by SHA-256; on a mismatch name the chunk and the first differing
 * byte. Along the way, check extent(): its runs tile the disk and every
 * 'zero' run reads as zeros.
 */
export async function assertSameBytes(source: BlockSource, rawPath: string, label: string): Promise<void> {
  const fh = await open(rawPath, 'r');
  try {
    const refSize = (await fh.stat()).size;
    assert.equal(source.size, refSize, `${label}: virtual size ${source.size}, qemu-img convert wrote ${refSize} bytes`);
    const theirs = Buffer.alloc(CHUNK);
    let extentEnd = 0;
    let extentRuns = 0;
    for (let offset = 0; offset < source.size; offset += CHUNK) {
      const length = Math.min(CHUNK, source.size - offset);
      const ours = await source.read(offset, length);
      const { bytesRead } = await fh.read(theirs, 0, length, offset);
      assert.equal(bytesRead, length);
      const ref = theirs.subarray(0, length);
      const a = digest(ours);
      const b = digest(ref);
      if (a !== b) {
        let i = 0;
        while (i < length && ours[i] === ref[i]) i++;
        assert.fail(`${label}: chunk at ${offset} differs (ours sha256 ${a.slice(0, 16)}, qemu ${b.slice(0, 16)}); first difference at byte ${offset + i}: ours 0x${ours[i].toString(16)}, qemu 0x${ref[i].toString(16)}`);
      }
      const allZero = a === digest(ZERO.subarray(0, length));
      while (extentEnd < offset + length) {
        const e = await source.extent(extentEnd, source.size - extentEnd);
        assert.equal(e.offset, extentEnd, `${label}: extent offset`);
        assert.ok(e.length > 0 && extentEnd + e.length <= source.size, `${label}: extent at ${extentEnd} of ${e.length} bytes`);
        assert.ok(++extentRuns < 10_000_000, `${label}: extent() does not make progress`);
        if (e.kind === 'zero') {
          // The part of this zero run inside the chunk in hand; the rest is checked with the next chunks.
          const from = Math.max(e.offset, offset) - offset;
          const to = Math.min(e.offset + e.length, offset + length) - offset;
          assert.ok(allZero || ours.subarray(from, to).equals(ZERO.subarray(0, to - from)), `${label}: zero extent at ${e.offset} reads non-zero`);
          if (e.offset + e.length > offset + length) {
            extentEnd = offset + length;
            break;
          }
        }
        extentEnd = e.offset + e.length;
      }
    }
  } finally {
    await fh.close();
  }
}

/**
 * The conformance oracle: our bytes over the whole virtual disk of `image`
 * equal `qemu-img convert -O raw`. `files` (the image and every file of its
 * chain) are checked unchanged (hash and mtime) around our reading.
 */
export async function assertMatchesQemu(image: string, files: string[], options: OpenImageOptions = {}): Promise<void> {
  const dir = scratchDir('ref');
  const ref = join(dir, 'ref.raw');
  try {
    await qemuImg(['convert', '-O', 'raw', ...(options.format ? ['-f', options.format] : []), image, ref]);
    const info = await qemuInfo(image, options.format);
    await guardImages(files, async () => {
      const source = await openImage(image, options);
      try {
        assert.equal(source.size, info['virtual-size'], `${image}: virtual size`);
        await assertSameBytes(source, ref, image);
      } finally {
        await source.close();
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function writeBytes(path: string, offset: number, bytes: Buffer): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, offset);
  } finally {
    await fh.close();
  }
}

export async function writeFileBytes(path: string, data: Buffer): Promise<void> {
  await writeFile(path, data);
}
