/**
 * A file's bytes from its EXTENT_DATA items: inline extents (in the leaf,
 * maybe compressed), regular extents (a slice of a possibly compressed,
 * possibly shared on-disk extent), preallocated extents (zeros) and holes
 * (no item at all with NO_HOLES, or an extent at disk address 0). Items are
 * found from the last one starting at or before the read, so a read costs
 * the extents it covers, not the file's whole map.
 */
import { BoundedLru } from '@guestlens/block';
import type { FileExtent as FiemapExtent } from '../filesystem.ts';
import { DecompressionProblem, decompressExtent } from './compression.ts';
import { parseFileExtent, type FileExtent } from './items.ts';
import { COMPRESS, COMPRESS_NAMES, KEY } from './layout.ts';
import { decodeItem } from './roots.ts';
import { itemsOf, lastAtOrBefore, type TreeRoot } from './tree.ts';
import type { BtrfsVolume } from './volume.ts';

export interface ExtentAt {
  /** File offset of the extent. */
  fileOffset: number;
  extent: FileExtent;
  /** Bytes of the file it covers. */
  length: number;
}

/** Extents overlapping [offset, end) of inode `objectid`, in file order. */
export async function extentsIn(vol: BtrfsVolume, tree: TreeRoot, objectid: bigint, offset: number, end: number): Promise<ExtentAt[]> {
  const out: ExtentAt[] = [];
  const add = (fileOffset: bigint, data: FoundLike) => {
    const extent = decodeItem(vol, data, `file extent of inode ${objectid} at ${fileOffset}`, parseFileExtent);
    const length = extentLength(vol, extent, objectid, fileOffset);
    const start = Number(fileOffset);
    if (start + length > offset && start < end) out.push({ fileOffset: start, extent, length });
  };
  const before = await lastAtOrBefore(vol, tree, { objectid, type: KEY.EXTENT_DATA, offset: BigInt(offset) });
  if (before && before.key.objectid === objectid && before.key.type === KEY.EXTENT_DATA) add(before.key.offset, before);
  if (end > offset + 1) {
    for await (const it of itemsOf(vol, tree, objectid, KEY.EXTENT_DATA, BigInt(offset) + 1n, BigInt(end) - 1n)) add(it.key.offset, it);
  }
  return out;
}

type FoundLike = Parameters<typeof decodeItem>[1];

function extentLength(vol: BtrfsVolume, e: FileExtent, objectid: bigint, at: bigint): number {
  const what = `file extent of inode ${objectid} at ${at}`;
  if (e.kind === 'inline') {
    const n = e.compression === COMPRESS.NONE ? e.data.length : Number(e.ramBytes);
    if (n > vol.sb.sectorsize * 4) throw vol.corrupt(what, undefined, `an inline extent of ${n} bytes`);
    return n;
  }
  if (e.numBytes > BigInt(Number.MAX_SAFE_INTEGER) || at + e.numBytes > BigInt(Number.MAX_SAFE_INTEGER)) throw vol.corrupt(what, undefined, `num_bytes ${e.numBytes} is beyond any file`);
  return Number(e.numBytes);
}

/** Decompressed extents, shared by neighbouring reads (a compressed extent is read whole to get any byte of it). */
export class ExtentCache {
  private readonly lru: BoundedLru<string, Promise<Buffer>>;
  constructor(bytes: number) {
    this.lru = new BoundedLru(Math.max(256 * 1024, bytes), (b) => 128 * 1024);
  }
  get(key: string, load: () => Promise<Buffer>): Promise<Buffer> {
    const hit = this.lru.get(key);
    if (hit) return hit;
    const p = load();
    this.lru.set(key, p);
    p.catch(() => this.lru.delete(key, p));
    return p;
  }
  clear(): void {
    this.lru.clear();
  }
}

/** Bytes [offset, offset + n) of the file, zeros where no extent holds data. */
export async function readFileRange(vol: BtrfsVolume, tree: TreeRoot, objectid: bigint, offset: number, n: number, cache: ExtentCache): Promise<Buffer> {
  const out = Buffer.alloc(n);
  if (n === 0) return out;
  const end = offset + n;
  for (const x of await extentsIn(vol, tree, objectid, offset, end)) {
    const from = Math.max(offset, x.fileOffset);
    const to = Math.min(end, x.fileOffset + x.length);
    if (to <= from) continue;
    const e = x.extent;
    const what = `file extent of inode ${objectid} at ${x.fileOffset}`;
    if (e.kind === 'prealloc') continue;
    if (e.kind === 'inline') {
      const data = e.compression === COMPRESS.NONE ? e.data : await decompress(vol, e.compression, e.data, Number(e.ramBytes), what);
      data.copy(out, from - offset, from - x.fileOffset, Math.min(data.length, to - x.fileOffset));
      continue;
    }
    if (e.diskBytenr === 0n) continue; // an explicit hole
    if (e.encryption !== 0 || e.otherEncoding !== 0) throw vol.corrupt(what, undefined, `encryption ${e.encryption}, other encoding ${e.otherEncoding} (btrfs defines none)`);
    const within = BigInt(from - x.fileOffset);
    if (e.compression === COMPRESS.NONE) {
      const data = await vol.readLogical(e.diskBytenr + e.offset + within, to - from, what);
      data.copy(out, from - offset);
      continue;
    }
    if (e.diskNumBytes > 1n << 20n || e.ramBytes > 1n << 20n) throw vol.corrupt(what, undefined, `a compressed extent of ${e.diskNumBytes} bytes on disk, ${e.ramBytes} in memory`);
    const key = `${e.diskBytenr}:${e.diskNumBytes}:${e.compression}:${e.ramBytes}`;
    const whole = await cache.get(key, async () => decompress(vol, e.compression, await vol.readLogical(e.diskBytenr, Number(e.diskNumBytes), what), Number(e.ramBytes), what));
    const start = Number(e.offset + within);
    if (start > whole.length) continue;
    whole.copy(out, from - offset, start, Math.min(whole.length, start + (to - from)));
  }
  return out;
}

async function decompress(vol: BtrfsVolume, method: number, data: Buffer, ramBytes: number, what: string): Promise<Buffer> {
  try {
    return await decompressExtent(method, data, ramBytes, vol.sb.sectorsize);
  } catch (err) {
    if (err instanceof DecompressionProblem) throw vol.corrupt(`${what} (${COMPRESS_NAMES[method] ?? `compression ${method}`})`, undefined, err.message);
    throw err;
  }
}

/** The FIEMAP view of [offset, end): extents as they are, with holes between them. */
export async function fileExtentMap(vol: BtrfsVolume, tree: TreeRoot, objectid: bigint, offset: number, end: number, primaryDevid: bigint): Promise<FiemapExtent[]> {
  const out: FiemapExtent[] = [];
  let pos = offset;
  for (const x of await extentsIn(vol, tree, objectid, offset, end)) {
    const from = Math.max(pos, x.fileOffset);
    const to = Math.min(end, x.fileOffset + x.length);
    if (to <= from) continue;
    if (from > pos) out.push({ offset: pos, length: from - pos, kind: 'hole' });
    const e = x.extent;
    let ext: FiemapExtent;
    if (e.kind === 'inline') ext = { offset: from, length: to - from, kind: 'inline' };
    else if (e.kind === 'prealloc') ext = { offset: from, length: to - from, kind: 'unwritten' };
    else if (e.diskBytenr === 0n) ext = { offset: from, length: to - from, kind: 'hole' };
    else {
      const compressed = e.compression !== COMPRESS.NONE;
      const logical = compressed ? e.diskBytenr : e.diskBytenr + e.offset + BigInt(from - x.fileOffset);
      const copies = vol.copiesOf(logical, compressed ? Number(e.diskNumBytes) : to - from);
      const copy = copies?.find((c) => c.devid === primaryDevid);
      ext = { offset: from, length: to - from, kind: compressed ? 'compressed' : 'data' };
      if (copy && copy.offset <= BigInt(Number.MAX_SAFE_INTEGER)) ext.physical = Number(copy.offset);
    }
    out.push(ext);
    pos = to;
  }
  if (pos < end) out.push({ offset: pos, length: end - pos, kind: 'hole' });
  return out;
}
