/**
 * guestlens's reader against qemu-img, on any image: go-qcow2reader's
 * hack/compare-with-qemu-img.sh, as a library (tests) and as a script a user
 * can point at their own image (scripts/compare-with-qemu-img.sh).
 *  - the extent map: our extent() runs against `qemu-img map --output=json`
 *    (both reduced to data / compressed / zero runs, neighbours of one kind
 *    joined, since the two tools split runs differently);
 *  - bytes: the whole disk, or random ranges, against `qemu-img dd`/convert.
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extents, type ExtentKind } from '@guestlens/block';
import { guestChunks, openImage, type OpenImageOptions } from '@guestlens/qcow2-js';
import { Prng } from './prng.ts';

export interface KindRun {
  start: number;
  length: number;
  kind: ExtentKind;
}

interface QemuMapEntry {
  start: number;
  length: number;
  present: boolean;
  zero: boolean;
  data: boolean;
  offset?: number;
}

function join_(runs: KindRun[]): KindRun[] {
  const out: KindRun[] = [];
  for (const r of runs) {
    const prev = out[out.length - 1];
    if (prev && prev.kind === r.kind && prev.start + prev.length === r.start) prev.length += r.length;
    else out.push({ ...r });
  }
  return out;
}

/** qemu-img map's view: zero (a zero flag or nothing present), compressed (data without a host offset, in formats that compress), else data. */
export async function qemuMapRuns(image: string, format?: string): Promise<KindRun[]> {
  const r = await execa('qemu-img', ['map', '--output=json', ...(format ? ['-f', format] : []), image]);
  const entries = JSON.parse(r.stdout) as QemuMapEntry[];
  return join_(
    entries.map((e) => ({ start: e.start, length: e.length, kind: e.zero || !e.data ? 'zero' : e.offset === undefined ? 'compressed' : 'data' })),
  );
}

/** Our view: extent() over the whole disk. */
export async function ourMapRuns(image: string, options: OpenImageOptions = {}): Promise<KindRun[]> {
  const source = await openImage(image, options);
  try {
    const runs: KindRun[] = [];
    for await (const e of extents(source)) runs.push({ start: e.offset, length: e.length, kind: e.kind });
    return join_(runs);
  } finally {
    await source.close();
  }
}

/** The SHA-256 of `length` bytes at `offset` of a file (qemu-img's raw conversion of the image). */
async function fileRangeHash(path: string, offset: number, length: number): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const h = createHash('sha256');
    const buf = Buffer.alloc(Math.min(length, 4 << 20));
    for (let done = 0; done < length; ) {
      const want = Math.min(buf.length, length - done);
      const { bytesRead } = await fh.read(buf, 0, want, offset + done);
      // Past the end of a sparse conversion: zeros.
      if (bytesRead < want) buf.fill(0, bytesRead, want);
      h.update(buf.subarray(0, want));
      done += want;
    }
    return h.digest('hex');
  } finally {
    await fh.close();
  }
}

export interface CompareResult {
  mapEqual: boolean;
  ours: KindRun[];
  theirs: KindRun[];
  /** Ranges whose bytes differ. */
  mismatches: { offset: number; length: number }[];
  checkedRanges: number;
}

/** Compare the map and `ranges` random ranges (plus the first and last MiB) of `image` with qemu-img. */
export async function compareWithQemuImg(image: string, options: { format?: string; ranges?: number; seed?: number; whole?: boolean } = {}): Promise<CompareResult> {
  const format = options.format;
  const [ours, theirs] = await Promise.all([ourMapRuns(image, { format }), qemuMapRuns(image, format)]);
  const mapEqual = JSON.stringify(ours) === JSON.stringify(theirs);
  // qemu-img's bytes: one sparse raw conversion (qemu-img dd cannot skip into every image).
  const dir = mkdtempSync(join(tmpdir(), 'gltest-compare-'));
  const reference = join(dir, 'reference.raw');
  await execa('qemu-img', ['convert', '-O', 'raw', ...(format ? ['-f', format] : []), image, reference]);
  const source = await openImage(image, { format });
  const mismatches: { offset: number; length: number }[] = [];
  let checkedRanges = 0;
  try {
    const size = source.size;
    const rnd = new Prng(options.seed ?? 1);
    const ranges: [number, number][] = [
      [0, Math.min(size, 1 << 20)],
      [Math.max(0, size - (1 << 20)), Math.min(size, 1 << 20)],
    ];
    for (let i = 0; i < (options.ranges ?? 16); i++) {
      const offset = Math.floor(rnd.float() * size);
      ranges.push([offset, Math.min(size - offset, 1 + rnd.below(1 << 20))]);
    }
    if (options.whole) ranges.push([0, size]);
    for (const [offset, length] of ranges) {
      if (length <= 0) continue;
      const h = createHash('sha256');
      for await (const chunk of guestChunks(source, { offset, length })) h.update(chunk);
      if (h.digest('hex') !== (await fileRangeHash(reference, offset, length))) mismatches.push({ offset, length });
      checkedRanges++;
    }
  } finally {
    await source.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return { mapEqual, ours, theirs, mismatches, checkedRanges };
}
