/**
 * The oracle for the image formats beside qcow2 (vmdk, vdi, vhdx, vpc):
 * qemu-img. For an image made or read by qemu-img, what guestlens says must
 * agree with it:
 *
 *  - bytes: the whole virtual disk equals `qemu-img convert -O raw`;
 *  - `image info`: virtual size, cluster size, the backing chain, and for
 *    vmdk the format-specific block (CID, parent CID, create type, extents);
 *  - extents: where `qemu-img map --output=json` says a range is data and not
 *    zero, ours say data (or compressed); where it says zero and not data,
 *    ours say zero. (Ranges QEMU calls both, file holes of flat data, may be
 *    either.) vhdx has no block status in QEMU 7.2, so its map says "data"
 *    everywhere and only the zero side is checked, by the bytes.
 */
import assert from 'node:assert/strict';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describeImage, openImage, type ImageInfo, type ImageLayer, type OpenImageOptions } from '../../src/index.ts';
import { guardImages } from '../../../../test/support/imageGuard.ts';
import { scratchDir } from '../../../../test/support/scratch.ts';
import { assertSameBytes, qemuImg } from './qemu.ts';

export interface MapEntry {
  start: number;
  length: number;
  depth: number;
  present: boolean;
  zero: boolean;
  data: boolean;
  offset?: number;
}

export async function qemuMap(image: string, format: string): Promise<MapEntry[]> {
  return JSON.parse(await qemuImg(['map', '--output=json', '-f', format, image])) as MapEntry[];
}

export async function qemuInfoChainOf(image: string, format: string): Promise<Record<string, unknown>[]> {
  return JSON.parse(await qemuImg(['info', '--output=json', '--backing-chain', '-f', format, image])) as Record<string, unknown>[];
}

/** Our extent map of the whole disk, checked against qemu-img map. */
export async function assertMapAgrees(source: ImageLayer, map: MapEntry[], label: string, precise = true): Promise<void> {
  const ours: { start: number; end: number; kind: string }[] = [];
  for (let pos = 0; pos < source.size; ) {
    const e = await source.extent(pos, source.size - pos);
    ours.push({ start: e.offset, end: e.offset + e.length, kind: e.kind });
    pos += e.length;
  }
  let i = 0;
  for (const q of map) {
    const qEnd = q.start + q.length;
    while (i < ours.length && ours[i].end <= q.start) i++;
    for (let j = i; j < ours.length && ours[j].start < qEnd; j++) {
      const o = ours[j];
      const where = `${label}: qemu-img map says ${q.start}+${q.length} is ${q.data ? 'data' : 'no data'}${q.zero ? ', zero' : ''}; ours says ${o.start}..${o.end} is ${o.kind}`;
      if (q.data && !q.zero && precise) assert.notEqual(o.kind, 'zero', where);
      if (!q.data && q.zero) assert.equal(o.kind, 'zero', where);
    }
  }
}

/** The fields qemu-img info and `image info` share, compared layer by layer. */
export function assertInfoAgrees(ours: ImageInfo[], theirs: Record<string, unknown>[], label: string): void {
  assert.equal(ours.length, theirs.length, `${label}: chain length (ours ${ours.map((o) => o.filename).join(' <- ')})`);
  ours.forEach((o, n) => {
    const t = theirs[n];
    const what = `${label}, layer ${n} (${o.filename})`;
    assert.equal(o.format, t.format, `${what}: format`);
    assert.equal(o['virtual-size'], t['virtual-size'], `${what}: virtual size`);
    assert.equal(o['cluster-size'], t['cluster-size'], `${what}: cluster size`);
    assert.equal(o['backing-filename'], t['backing-filename'], `${what}: backing file`);
    assert.equal(o['backing-filename-format'], t['backing-filename-format'], `${what}: backing format`);
    if (t['full-backing-filename'] !== undefined) assert.equal(o['full-backing-filename'], t['full-backing-filename'], `${what}: full backing file name`);
    const spec = t['format-specific'] as { type: string; data: Record<string, unknown> } | undefined;
    if (spec?.type === 'vmdk') {
      const mine = o['format-specific'];
      assert.equal(mine?.type, 'vmdk', `${what}: format-specific block`);
      assert.deepEqual(mine?.data, spec.data, `${what}: vmdk format-specific block`);
    }
  });
}

export interface FormatCheckOptions extends OpenImageOptions {
  format: string;
  /** Every file the image consists of or names (checked unchanged). */
  files: string[];
  /** qemu-img map is exact for this image (false for vhdx, which has no block status in QEMU). */
  preciseMap?: boolean;
  /** Besides the whole disk in aligned chunks: these [offset, length] ranges, each one read() of ours against the same bytes of qemu's. */
  ranges?: ReadonlyArray<readonly [number, number]>;
  /** Change qemu-img's raw conversion before comparing (only to show the comparison catches a difference). */
  alterReference?: (rawPath: string) => Promise<void>;
}

/** One read() of ours per range against the same bytes of a raw file (qemu-img's conversion). */
export async function assertSameRanges(source: ImageLayer, rawPath: string, ranges: ReadonlyArray<readonly [number, number]>, label: string): Promise<void> {
  const fh = await open(rawPath, 'r');
  try {
    for (const [offset, length] of ranges) {
      const ours = await source.read(offset, length);
      const theirs = Buffer.alloc(length);
      await fh.read(theirs, 0, length, offset);
      if (!ours.equals(theirs)) {
        let i = 0;
        while (i < length && ours[i] === theirs[i]) i++;
        assert.fail(`${label}: read(${offset}, ${length}) differs from qemu-img's bytes first at byte ${offset + i}: ours 0x${ours[i]?.toString(16)}, qemu 0x${theirs[i]?.toString(16)}`);
      }
    }
  } finally {
    await fh.close();
  }
}

/**
 * The whole oracle for one image: bytes equal `qemu-img convert -O raw`,
 * `image info` agrees with `qemu-img info --backing-chain`, extents agree
 * with `qemu-img map`; and no file changed.
 */
export async function assertFormatMatchesQemu(image: string, options: FormatCheckOptions): Promise<void> {
  const dir = scratchDir('ref');
  const ref = join(dir, 'ref.raw');
  try {
    await qemuImg(['convert', '-q', '-f', options.format, '-O', 'raw', image, ref]);
    await options.alterReference?.(ref);
    const info = await qemuInfoChainOf(image, options.format);
    await guardImages(options.files, async () => {
      // Asked after the guard has read every file: the host's SEEK_DATA calls an unwritten (fallocated) block of a
      // raw file a hole until its pages are in the page cache, and data after; asked before, qemu-img map and
      // our extent() would see two different files.
      const map = await qemuMap(image, options.format);
      const source = await openImage(image, options);
      try {
        await assertSameBytes(source, ref, image);
        if (options.ranges) await assertSameRanges(source, ref, options.ranges, image);
        assertInfoAgrees(describeImage(source), info, image);
        await assertMapAgrees(source, map, image, options.preciseMap ?? true);
      } finally {
        await source.close();
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
