/**
 * Mutation fuzzing of FAT volumes: small real volumes (FAT12, FAT16, FAT32,
 * made with mkfs.vfat and mtools) are held in memory; each case mutates a
 * few bytes of one structure (the boot sector, FAT32's backup boot sector
 * and FSInfo, sectors of the FAT that hold chains, the root directory,
 * subdirectory clusters) through MemorySource patches, then opens the
 * volume, takes statfs, walks the tree (bounded: a damaged tree may be a
 * cycle), reads the start of every file and its extents, and lists inodes
 * with deleted entries. Every failure must be a typed FilesystemError; a
 * read budget turns a loop into a failure instead of a hang; the driver's
 * limits keep memory bounded.
 */
import { FilesystemError } from '../../../src/filesystems/errors.ts';
import { FatFilesystem } from '../../../src/filesystems/fat/index.ts';
import type { FatLimits } from '../../../src/filesystems/fat/index.ts';
import { MemorySource } from '../../../../../test/support/memorySource.ts';
import { Prng } from '../../../../../test/support/prng.ts';
import { readFile } from 'node:fs/promises';
import { buildFat, decorate, standardTree } from './fatFixtures.ts';

export type RegionKind = 'boot sector' | 'backup boot sector' | 'FSInfo' | 'FAT' | 'root directory' | 'directory';

export interface Region {
  kind: RegionKind;
  /** First byte; regions are whole 512-byte sectors. */
  offset: number;
  length: number;
}

export interface FuzzImage {
  name: string;
  data: Buffer;
  regions: Region[];
}

export interface FuzzFailure {
  image: string;
  seed: number;
  region: RegionKind;
  error: unknown;
}

export interface FuzzStats {
  cases: number;
  opened: number;
  errorsByCode: Record<string, number>;
  /** Errors by the structure they name, numbers left out ("FAT entry N", "cluster chain of directory entry at byte N"). */
  errorsByStructure: Record<string, number>;
  byKind: Record<string, number>;
}

export const FUZZ_LIMITS: Partial<FatLimits> = {
  maxReadBytes: 1 << 20,
  maxDirectoryBytes: 1 << 20,
  maxChainRuns: 1 << 16,
  cacheBytes: 1 << 20,
  directoryCacheBytes: 4 << 20,
  chainCacheRuns: 1 << 17,
  maxInodes: 20_000,
};

const SECTOR = 512;
const READ_BUDGET = 30_000;
const MAX_NODES = 3000;
const MAX_DEPTH = 40;

/** The volumes the fuzzer mutates: one of each FAT size, with long names, a deep tree, a fragmented and a deleted file. */
export async function buildFuzzImages(): Promise<FuzzImage[]> {
  const out: FuzzImage[] = [];
  for (const [name, size, args, cs] of [
    ['fuzz-fat12', 1440 * 1024, ['-F', '12', '-n', 'F12'], 512],
    ['fuzz-fat16', 16 * 1024 * 1024, ['-F', '16', '-n', 'F16'], 2048],
    ['fuzz-fat32', 40 * 1024 * 1024, ['-F', '32', '-n', 'F32'], 512],
  ] as const) {
    const fx = await buildFat(name, { sizeBytes: size, mkfsArgs: [...args], tree: standardTree(cs, { depth: 6, many: 12 }), after: (img) => decorate(img, cs) });
    const data = await readFile(fx.path);
    out.push({ name, data, regions: await findRegions(name, data) });
  }
  return out;
}

/** The structures of a clean volume worth mutating, found with the driver itself. */
export async function findRegions(name: string, data: Buffer): Promise<Region[]> {
  const fs = await FatFilesystem.open(new MemorySource(data, name), { limits: FUZZ_LIMITS });
  const vol = fs.volume;
  const g = vol.geometry;
  const ss = g.sectorSize;
  const regions: Region[] = [{ kind: 'boot sector', offset: 0, length: SECTOR }];
  if (g.fatBits === 32) {
    regions.push({ kind: 'backup boot sector', offset: fs.bootSector.bpb.BPB_BkBootSec * ss, length: SECTOR });
    regions.push({ kind: 'FSInfo', offset: g.fsinfoSector * ss, length: SECTOR });
  }
  const fatSectorOf = (cluster: number) => Math.floor((g.fatStart * ss + Math.floor((cluster * g.fatBits) / 8)) / ss);
  const fatSectors = new Set<number>([g.fatStart, g.fatStart + 1]);
  const addClusters = (kind: RegionKind, clusters: number[]) => {
    for (const c of clusters.slice(0, 4)) {
      regions.push({ kind, offset: vol.clusterOffset(c), length: vol.clusterSize });
      fatSectors.add(fatSectorOf(c));
    }
  };
  if (g.fatBits !== 32) regions.push({ kind: 'root directory', offset: g.dirStart * ss, length: g.dirEntries * 32 });
  else addClusters('root directory', await directoryClusters(fs, fs.rootIno, g.rootCluster));
  const visit = async (ino: number, depth: number) => {
    for (const e of await fs.readdir(ino)) {
      const st = await fs.getattr(e.ino);
      if (st.type === 'directory') {
        addClusters('directory', await directoryClusters(fs, e.ino, undefined));
        if (depth < 8) await visit(e.ino, depth + 1);
        continue;
      }
      for (const x of await fs.extents(e.ino)) {
        const first = (x.physical! - vol.dataOffset) / vol.clusterSize + 2;
        const last = first + Math.ceil(x.length / vol.clusterSize) - 1;
        fatSectors.add(fatSectorOf(first)).add(fatSectorOf(last));
      }
    }
  };
  await visit(fs.rootIno, 0);
  for (const s of fatSectors) regions.push({ kind: 'FAT', offset: s * ss, length: SECTOR });
  return regions;
}

/** The clusters holding a directory's entries (the driver keeps its chains to itself), with the root's first cluster. */
async function directoryClusters(fs: FatFilesystem, ino: number, rootCluster: number | undefined): Promise<number[]> {
  const vol = fs.volume;
  const clusters = new Set<number>();
  if (rootCluster) clusters.add(rootCluster);
  for (const e of await fs.readdir(ino)) clusters.add(Math.floor((e.ino * 32 - vol.dataOffset) / vol.clusterSize) + 2);
  return [...clusters].filter((c) => c >= 2).sort((a, b) => a - b);
}

const INTERESTING16 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x200, 0x7fff, 0x8000, 0xfff7, 0xfff8, 0xffff];
const INTERESTING32 = [0, 1, 2, 0xff7, 0xff8, 0xffff, 0x10000, 0x0ffffff7, 0x0ffffff8, 0x0fffffff, 0x7fffffff, 0xffffffff];

/** Mutate 1..4 places of one sector of `region` through patches of `source`. */
function mutate(source: MemorySource, region: Region, rng: Prng): void {
  const sector = Math.floor(region.offset / SECTOR) + rng.below(Math.max(1, Math.floor(region.length / SECTOR)));
  const unit = source.unit(sector);
  for (let k = 1 + rng.below(4); k > 0; k--) {
    const pos = rng.below(SECTOR);
    switch (rng.below(6)) {
      case 0:
        unit[pos] = rng.below(256);
        break;
      case 1:
        unit[pos] ^= 1 << rng.below(8);
        break;
      case 2:
        if (pos + 2 <= SECTOR) unit.writeUInt16LE(INTERESTING16[rng.below(INTERESTING16.length)], pos - (pos % 2));
        break;
      case 3:
        if (pos - (pos % 4) + 4 <= SECTOR) unit.writeUInt32LE(INTERESTING32[rng.below(INTERESTING32.length)], pos - (pos % 4));
        break;
      case 4:
        // A directory-entry-shaped hit: attribute, first cluster or size of one entry.
        {
          const e = pos - (pos % 32);
          const field = [11, 12, 13, 20, 26, 28][rng.below(6)];
          if (field === 28) unit.writeUInt32LE(INTERESTING32[rng.below(INTERESTING32.length)], e + 28);
          else if (field === 20 || field === 26) unit.writeUInt16LE(INTERESTING16[rng.below(INTERESTING16.length)], e + field);
          else unit[e + field] = [0x0f, 0x10, 0x08, 0x01, 0x00, 0xff, 0x40, 0x41][rng.below(8)];
        }
        break;
      default:
        unit[pos] = [0x00, 0xe5, 0x05, 0x2e, 0x40, 0x41, 0xff][rng.below(7)];
    }
  }
  source.patch(sector * SECTOR, unit);
}

/** Open, statfs, walk (bounded), read and enumerate one mutated volume. */
async function exercise(source: MemorySource, tolerated: (err: FilesystemError) => void): Promise<void> {
  const fs = await FatFilesystem.open(source, { limits: FUZZ_LIMITS });
  await fs.statfs();
  void fs.label;
  void fs.uuid;
  let nodes = 0;
  const seen = new Set<number>();
  const visit = async (ino: number, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH || seen.has(ino)) return;
    seen.add(ino);
    for (const e of await fs.readdir(ino)) {
      if (++nodes > MAX_NODES) return;
      let st;
      try {
        st = await fs.getattr(e.ino);
        await fs.lookup(ino, e.name);
      } catch (err) {
        if (!(err instanceof FilesystemError)) throw err;
        tolerated(err);
        continue;
      }
      try {
        if (st.type === 'directory') await visit(e.ino, depth + 1);
        else {
          await fs.read(e.ino, 0, 65536);
          await fs.extents(e.ino, 0, 1 << 20);
        }
      } catch (err) {
        if (!(err instanceof FilesystemError)) throw err;
        tolerated(err);
      }
    }
  };
  await visit(fs.rootIno, 0);
  let listed = 0;
  for await (const _ of fs.inodes({ deleted: true })) if (++listed > MAX_NODES * 4) break;
}

export async function runFuzz(images: FuzzImage[], cases: number, seed: number): Promise<{ failures: FuzzFailure[]; stats: FuzzStats }> {
  const failures: FuzzFailure[] = [];
  const stats: FuzzStats = { cases: 0, opened: 0, errorsByCode: {}, errorsByStructure: {}, byKind: {} };
  const kinds = [...new Set(images.flatMap((i) => i.regions.map((r) => r.kind)))];
  for (let c = 0; c < cases; c++) {
    const caseSeed = (seed + c * 0x9e3779b1) >>> 0;
    const rng = new Prng(caseSeed);
    // A kind of structure first, so the many directory clusters do not crowd out the few boot sectors.
    const kind = kinds[rng.below(kinds.length)];
    const candidates = images.filter((i) => i.regions.some((r) => r.kind === kind));
    const image = candidates[rng.below(candidates.length)];
    const ofKind = image.regions.filter((r) => r.kind === kind);
    const region = ofKind[rng.below(ofKind.length)];
    const source = new MemorySource(image.data, `${image.name}#${caseSeed}`, image.data.length, SECTOR, READ_BUDGET);
    mutate(source, region, rng);
    // Sometimes two structures at once (a boot sector that still mounts, plus a directory...).
    if (rng.below(4) === 0) mutate(source, image.regions[rng.below(image.regions.length)], rng);
    stats.cases++;
    stats.byKind[region.kind] = (stats.byKind[region.kind] ?? 0) + 1;
    const typed = (err: FilesystemError) => {
      stats.errorsByCode[err.code] = (stats.errorsByCode[err.code] ?? 0) + 1;
      const structure = String((err.data as { structure?: unknown }).structure ?? err.code).replace(/\d+/g, 'N');
      stats.errorsByStructure[structure] = (stats.errorsByStructure[structure] ?? 0) + 1;
      if (err.userFacing !== true || !err.message.startsWith(`${source.name}: `)) failures.push({ image: image.name, seed: caseSeed, region: region.kind, error: new Error(`badly formed error: ${err.message}`) });
    };
    try {
      await exercise(source, typed);
      stats.opened++;
    } catch (err) {
      if (err instanceof FilesystemError) typed(err);
      else {
        failures.push({ image: image.name, seed: caseSeed, region: region.kind, error: err });
      }
    }
  }
  return { failures, stats };
}
