/**
 * From devices to a readable filesystem: each device's superblock (the
 * chosen copy), the devices grouped by fsid and keyed by devid, the SYSTEM
 * chunks of sys_chunk_array, then the whole chunk tree (every chunk and
 * every device item), and the root tree's root.
 */
import type { BlockSource } from '@guestlens/block';
import { ChunkMap, parseChunk, parseSysChunkArray, type Chunk } from './chunkMap.ts';
import { BtrfsCorruptError, BtrfsUnsupportedError } from './errors.ts';
import { KEY, OBJECTID } from './layout.ts';
import { parseDevItem, readSuperblock, type DevItem, type Superblock } from './superblock.ts';
import { itemsInRange, type TreeRoot } from './tree.ts';
import { BtrfsVolume, type BtrfsLimits } from './volume.ts';
import { MAX_U64 } from './key.ts';

export interface Bootstrapped {
  vol: BtrfsVolume;
  /** Device items of the chunk tree, by devid (sizes and bytes allocated, for statfs). */
  devItems: Map<bigint, DevItem>;
  rootTree: TreeRoot;
  warnings: string[];
  /** Why the kernel would refuse to mount what guestlens still reads (statfs is then inexact). */
  refusals: string[];
}

/** Bounds the chunk tree walk: a filesystem of 16 EiB in 1 GiB chunks has 2^34; a hostile tree is cut far earlier. */
const MAX_CHUNKS = 1_000_000;

export async function bootstrap(sources: BlockSource[], limits: BtrfsLimits, retryable: boolean): Promise<Bootstrapped> {
  if (sources.length === 0) throw new RangeError('btrfs needs at least one device');
  const image = sources[0].name;
  const warnings: string[] = [];
  const refusals: string[] = [];
  const supers: { source: BlockSource; sb: Superblock; checksummer: Awaited<ReturnType<typeof readSuperblock>>['checksummer'] }[] = [];
  for (const source of sources) {
    const choice = await readSuperblock(source, retryable);
    warnings.push(...choice.warnings.map((w) => `${source.name}: ${w}`));
    if (choice.primaryRefused) refusals.push(`${source.name}: ${choice.primaryRefused}`);
    supers.push({ source, sb: choice.sb, checksummer: choice.checksummer });
  }
  const first = supers[0];
  const devices = new Map<bigint, BlockSource>();
  let newest = first;
  for (const s of supers) {
    if (!s.sb.fsid.equals(first.sb.fsid)) {
      throw new BtrfsCorruptError(s.source.name, 'superblock', s.sb.offset, `its fsid differs from ${image}'s: the devices are not one filesystem`, { retryable });
    }
    if (devices.has(s.sb.devItem.devid)) {
      throw new BtrfsCorruptError(s.source.name, 'superblock', s.sb.offset, `device id ${s.sb.devItem.devid} is also claimed by ${devices.get(s.sb.devItem.devid)!.name}`, { retryable });
    }
    devices.set(s.sb.devItem.devid, s.source);
    if (s.sb.generation > newest.sb.generation) newest = s;
  }
  const sb = newest.sb;
  // The kernel mounts only when every device's superblock is of the same transaction (or with -o degraded).
  for (const s of supers) {
    if (s.sb.generation !== sb.generation) warnings.push(`${s.source.name}: its superblock is of generation ${s.sb.generation}, the newest device's ${sb.generation}`);
  }
  if (BigInt(devices.size) < sb.numDevices) {
    warnings.push(`${sb.numDevices} devices make this filesystem and ${devices.size} were given: data on the missing ones cannot be read`);
  }

  const sysChunks = parseSysChunkArray(sb.sysChunkArray, image, sb.sectorsize);
  const vol = new BtrfsVolume(devices, sb, newest.checksummer, new ChunkMap(sysChunks, image), limits, retryable, image);
  const chunkTree: TreeRoot = { bytenr: sb.chunkRoot, generation: sb.chunkRootGeneration, level: sb.chunkRootLevel, name: 'chunk tree', owner: OBJECTID.CHUNK_TREE };
  const chunks: Chunk[] = [];
  const devItems = new Map<bigint, DevItem>();
  for await (const it of itemsInRange(vol, chunkTree, { objectid: OBJECTID.DEV_ITEMS, type: KEY.DEV_ITEM, offset: 0n }, { objectid: MAX_U64, type: 255, offset: MAX_U64 })) {
    if (chunks.length + devItems.size > MAX_CHUNKS) throw vol.corrupt('chunk tree', undefined, `more than ${MAX_CHUNKS} items`);
    if (it.key.type === KEY.DEV_ITEM && it.key.objectid === OBJECTID.DEV_ITEMS) {
      if (it.data.length < 98) throw vol.corrupt(`device item ${it.key.offset} in the chunk tree`, undefined, `${it.data.length} bytes`);
      devItems.set(it.key.offset, parseDevItem(it.data, 0));
    } else if (it.key.type === KEY.CHUNK_ITEM) {
      chunks.push(parseChunk(it.data, 0, it.data.length, it.key.offset, image, 'chunk tree', sb.sectorsize));
    }
  }
  if (chunks.length === 0) throw vol.corrupt('chunk tree', undefined, 'it holds no chunk items');
  vol.chunks = new ChunkMap(chunks, image);
  for (const c of chunks) {
    for (const s of c.stripes) {
      if (!devItems.has(s.devid)) throw vol.corrupt(`chunk item for logical ${c.logical}`, undefined, `its stripe is on device ${s.devid}, which the chunk tree does not list`);
    }
  }
  // A filesystem smaller than the bytes it says are used is one the kernel's superblock checks reject.
  if (sb.totalBytes < sb.bytesUsed) refusals.push(`the kernel refuses to mount it: the superblock's total_bytes (${sb.totalBytes}) is below its bytes_used (${sb.bytesUsed})`);
  // A device shorter than its device item says (a truncated image) fails the mount's device checks.
  for (const [devid, source] of devices) {
    const item = devItems.get(devid);
    if (item && BigInt(source.size) < item.totalBytes) refusals.push(`the kernel refuses to mount it: device ${devid} (${source.name}) has ${source.size} bytes, its device item says ${item.totalBytes}`);
  }
  const rootTree: TreeRoot = { bytenr: sb.root, generation: sb.generation, level: sb.rootLevel, name: 'root tree', owner: OBJECTID.ROOT_TREE };
  return { vol, devItems, rootTree, warnings, refusals };
}

export { BtrfsUnsupportedError };
