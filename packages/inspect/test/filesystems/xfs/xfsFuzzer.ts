/**
 * Mutation fuzzing of the XFS driver, in memory: small real images (made by
 * mkfs.xfs and filled through a read-write loop mount where the kernel can,
 * by a prototype file where it cannot), a map of where each structure the
 * driver reads lives (superblock, AGF, AGI, inode btree blocks, inodes,
 * bmap btree blocks, directory and attribute blocks, remote symlink and
 * attribute value blocks, the log), then per case one structure mutated and,
 * half of the time on v5, its CRC recomputed so the damage reaches the
 * structure checks behind it. Every case opens, statfs-es and walks the whole
 * filesystem (and enumerates inodes, looks names up through the hash index,
 * reads extended attributes and extent maps); every failure must be a typed
 * filesystem error, a read budget turns a loop into a failure, and the heap
 * must stay bounded.
 */
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UnsafeNumberError } from '@guestlens/block';
import { FilesystemError } from '../../../src/filesystems/errors.ts';
import { XfsFilesystem } from '../../../src/filesystems/xfs/index.ts';
import { xfsChecksum } from '../../../src/filesystems/xfs/checksum.ts';
import { recordChecksum } from '../../../src/filesystems/xfs/logRecords.ts';
import { mapFork } from '../../../src/filesystems/xfs/bmap.ts';
import { readInode, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type Inode } from '../../../src/filesystems/xfs/inode.ts';
import { AGF, AGF_SECTOR, AGI, AGI_SECTOR, BTREE, DINODE, FMT } from '../../../src/filesystems/xfs/layout.ts';
import { bmdrMaxRecs } from '../../../src/filesystems/xfs/inode.ts';
import type { XfsVolume } from '../../../src/filesystems/xfs/volume.ts';
import { MemorySource, ReadBudgetExceeded } from '../../../../../test/support/memorySource.ts';
import { Prng } from '../../../../../test/support/prng.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { sh } from '../../../../../test/support/run.ts';
import { mountImage } from '../../../../../test/support/kernel.ts';
import { SMALL_FS_ENV, pseudoRandom } from './xfsFixtures.ts';

export { MemorySource };

export type RegionKind = 'superblock' | 'AGF' | 'AGI' | 'inode btree block' | 'inode' | 'bmap btree block' | 'directory block' | 'attribute block' | 'remote block' | 'log' | 'log record';

export interface Region {
  kind: RegionKind;
  offset: number;
  length: number;
  /** Where the CRC of this structure lives (from `offset`), on v5. */
  crcOffset?: number;
  /** A log record: header blocks, then the payload of `payload` bytes (its CRC covers both). */
  record?: { hblks: number; payload: number };
}

export interface FuzzImage {
  name: string;
  data: Buffer;
  regions: Region[];
  v5: boolean;
}

export interface FuzzStats {
  cases: number;
  opened: number;
  errorsByCode: Record<string, number>;
  byKind: Record<string, number>;
}

const LIMITS = { maxReadBytes: 4 << 20, maxDirectoryEntries: 20_000, maxDirectoryBytes: 16 << 20, cacheBytes: 1 << 20, maxBtreeBlocksPerMap: 20_000, maxExtentsPerCall: 100_000, maxLogScanBlocks: 1 << 16 };

/** The typed failures a hostile image may cause. */
export function isTyped(err: unknown): boolean {
  return err instanceof FilesystemError || err instanceof UnsafeNumberError;
}

/** Where every structure of a pristine image lives, found with the driver itself. */
async function findRegions(name: string, data: Buffer): Promise<Region[]> {
  const fs = await XfsFilesystem.open(new MemorySource(data, name));
  const vol = fs.volume;
  const sb = vol.sb;
  const bs = vol.blockSize;
  const regions: Region[] = [{ kind: 'superblock', offset: 0, length: sb.sb_sectsize, crcOffset: 224 }];
  for (let agno = 0; agno < sb.sb_agcount; agno++) {
    const agStart = agno * sb.sb_agblocks * bs;
    regions.push({ kind: 'AGF', offset: agStart + AGF_SECTOR * sb.sb_sectsize, length: sb.sb_sectsize, crcOffset: AGF.agf_crc });
    regions.push({ kind: 'AGI', offset: agStart + AGI_SECTOR * sb.sb_sectsize, length: sb.sb_sectsize, crcOffset: AGI.agi_crc });
    // The inode btree root (and one level below, if any).
    const agi = data.subarray(agStart + AGI_SECTOR * sb.sb_sectsize);
    const root = agi.readUInt32BE(AGI.agi_root);
    const linear = vol.agbToLinear(agno, root);
    if (linear !== undefined) regions.push({ kind: 'inode btree block', offset: linear * bs, length: bs, crcOffset: BTREE.s_crc });
  }
  const logStart = vol.fsbToLinear(sb.sb_logstart);
  if (logStart !== undefined) {
    const state = fs.mountState.log;
    const head = state?.headBlk ?? 0;
    for (const bb of [0, 1, Math.max(0, head - 1), Math.max(0, head - 2), head]) regions.push({ kind: 'log', offset: logStart * bs + bb * 512, length: 512 });
    // The records a replay reads, each a region whose CRC can be restamped.
    if (state && !state.clean) {
      const logBBs = sb.sb_logblocks * vol.bbPerBlock;
      for (let blk = state.tailBlk, n = 0; blk !== head && n < 200; n++) {
        const at = logStart * bs + blk * 512;
        const len = data.readUInt32BE(at + 12);
        const size = data.readUInt32BE(at + 320);
        const hblks = size > 32768 ? Math.ceil(size / 32768) : 1;
        const bbs = hblks + Math.ceil(len / 512);
        if (blk + bbs > logBBs || len === 0) break; // a wrapped record: keep the corpus simple
        regions.push({ kind: 'log record', offset: at, length: bbs * 512, record: { hblks, payload: len } });
        blk = (blk + bbs) % logBBs;
      }
    }
  }
  const seen = new Set<number>();
  const visit = async (ino: number, depth: number) => {
    if (seen.has(ino) || depth > 20) return;
    seen.add(ino);
    const inode = await readInode(vol, ino);
    regions.push({ kind: 'inode', offset: inode.byteOffset, length: sb.sb_inodesize, crcOffset: sb.hasCrc ? DINODE.di_crc : undefined });
    await forkRegions(vol, inode, 'data', regions);
    if (inode.attr) await forkRegions(vol, inode, 'attr', regions);
    if ((inode.di_mode & S_IFMT) === S_IFDIR) for (const e of await fs.readdir(ino)) await visit(e.ino, depth + 1);
  };
  await visit(fs.rootIno, 0);
  return regions;
}

/** The blocks of one fork: bmap btree blocks, and the directory, attribute or symlink blocks it maps. */
async function forkRegions(vol: XfsVolume, inode: Inode, which: 'data' | 'attr', out: Region[]): Promise<void> {
  const fork = which === 'data' ? inode.data : inode.attr!;
  const bs = vol.blockSize;
  if (fork.format === FMT.BTREE) {
    // Every bmbt block pointed at from the root (and their children, one level more).
    const root = fork.bytes;
    const maxrecs = bmdrMaxRecs(root.length);
    const numrecs = root.readUInt16BE(2);
    for (let i = 0; i < numrecs; i++) {
      const ptr = Number(root.readBigUInt64BE(4 + maxrecs * 8 + i * 8));
      const linear = vol.fsbToLinear(ptr);
      if (linear !== undefined) out.push({ kind: 'bmap btree block', offset: linear * bs, length: bs, crcOffset: BTREE.l_crc });
    }
  }
  if (fork.format !== FMT.EXTENTS && fork.format !== FMT.BTREE) return;
  const fmt = inode.di_mode & S_IFMT;
  if (which === 'data' && fmt === S_IFREG) return; // file data is not metadata
  const records = await mapFork({ vol, inode, fork }, 0, 2 ** 40);
  const kind: RegionKind = which === 'attr' ? 'attribute block' : fmt === S_IFLNK ? 'remote block' : 'directory block';
  const unit = kind === 'directory block' ? vol.sb.dirBlockSize / bs : 1;
  let taken = 0;
  for (const r of records) {
    for (let b = 0; b + unit <= r.blockcount && taken < 64; b += unit, taken++) {
      const linear = vol.fsbToLinear(r.startblock + b)!;
      // Data/block headers keep their CRC at 4, da-btree headers (leaf, node, attribute leaf) at 12, remote blocks at 12.
      const magic32 = (await vol.readBlock(linear)).readUInt32BE(0);
      const crcOffset = kind === 'directory block' && (magic32 >>> 16 === 0x5844) ? 4 : 12;
      out.push({ kind, offset: linear * bs, length: unit * bs, crcOffset: vol.sb.hasCrc ? crcOffset : undefined });
    }
  }
}

/** Mutate one region in place; returns what to restore. */
function mutate(data: Buffer, region: Region, rng: Prng): { offset: number; saved: Buffer } {
  const saved = Buffer.from(data.subarray(region.offset, region.offset + region.length));
  const n = 1 + rng.below(4);
  for (let k = 0; k < n; k++) {
    const at = region.offset + rng.below(region.length);
    switch (rng.below(6)) {
      case 0:
        data[at] ^= 1 << rng.below(8);
        break;
      case 1:
        data[at] = rng.below(2) ? 0xff : 0;
        break;
      case 2: {
        const a = region.offset + (rng.below(region.length) & ~3);
        if (a + 4 <= region.offset + region.length) data.writeUInt32BE(rng.next(), a);
        break;
      }
      case 3: {
        // A small or off-by-one value in a 16/32-bit field: the boundary cases of counts and lengths.
        const a = region.offset + (rng.below(region.length) & ~1);
        if (a + 2 <= region.offset + region.length) data.writeUInt16BE([0, 1, 2, 0xffff, 0x7fff, 8, 16][rng.below(7)], a);
        break;
      }
      case 4: {
        // Repeat bytes from elsewhere in the structure (pointers to itself, duplicated entries).
        const from = region.offset + rng.below(region.length);
        const len = Math.min(1 + rng.below(16), region.offset + region.length - Math.max(at, from));
        data.copy(data, at, from, from + len);
        break;
      }
      default:
        data[at] = rng.next() & 0xff;
    }
  }
  return { offset: region.offset, saved };
}

/** Recompute the CRC of a mutated v5 structure, so the damage is found by the checks behind the CRC. */
function restamp(data: Buffer, region: Region): void {
  if (region.record) {
    const { hblks, payload } = region.record;
    const rec = data.subarray(region.offset, region.offset + region.length);
    const sum = recordChecksum(rec.subarray(0, 512), rec.subarray(512, hblks * 512), rec.subarray(hblks * 512, hblks * 512 + payload));
    rec.writeUInt32LE(sum, 32);
    return;
  }
  if (region.crcOffset === undefined) return;
  const block = data.subarray(region.offset, region.offset + region.length);
  if (region.crcOffset + 4 > block.length) return;
  block.writeUInt32LE(xfsChecksum(block, region.crcOffset), region.crcOffset);
}

/** Open, statfs, and walk everything; errors inside one file do not stop the walk. */
async function exercise(source: MemorySource): Promise<{ opened: boolean; errors: unknown[] }> {
  const errors: unknown[] = [];
  let fs: XfsFilesystem;
  try {
    fs = await XfsFilesystem.open(source, { limits: LIMITS });
  } catch (err) {
    return { opened: false, errors: [err] };
  }
  const attempt = async <T>(fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      errors.push(err);
      return undefined;
    }
  };
  await attempt(() => fs.statfs());
  // Lookups before any listing go through the hash index of leaf and node directories.
  const fresh = await attempt(() => XfsFilesystem.open(source, { limits: LIMITS }));
  if (fresh) {
    const big = await attempt(() => fresh.lookup(fresh.rootIno, 'big'));
    if (big) for (const n of ['e-0-', 'e-17-zzzzzzzzzzzzzzzzz', 'e-299-zzzzzzzzzzzzzzzzzzzzzzzzz', 'missing']) await attempt(() => fresh.lookup(big, n));
  }
  let visited = 0;
  const visit = async (ino: number, depth: number): Promise<void> => {
    if (++visited > 800 || depth > 12) return;
    const st = await attempt(() => fs.getattr(ino));
    if (!st) return;
    const names = await attempt(() => fs.listxattr(ino));
    for (const n of (names ?? []).slice(0, 20)) await attempt(() => fs.getxattr(ino, n));
    if (st.type === 'symlink') await attempt(() => fs.readlink(ino));
    if (st.type === 'file') {
      for (let off = 0; off < Math.min(st.size, 2 << 20); off += 1 << 20) await attempt(() => fs.read(ino, off, 1 << 20));
      await attempt(() => fs.read(ino, Math.max(0, st.size - 10), 4096));
      await attempt(() => fs.extents(ino));
    }
    if (st.type === 'directory') {
      const entries = await attempt(() => fs.readdir(ino));
      await attempt(() => fs.lookup(ino, '..'));
      for (const e of (entries ?? []).slice(0, 400)) {
        if (e.ino % 3 === 0) await attempt(() => fs.lookup(ino, e.name));
        await visit(e.ino, depth + 1);
      }
    }
  };
  await visit(fs.rootIno, 0);
  await attempt(async () => {
    let n = 0;
    for await (const _ of fs.inodes({ deleted: true })) if (++n > 2000) break;
  });
  return { opened: true, errors };
}

export interface FuzzFailure {
  image: string;
  seed: number;
  region: string;
  error: unknown;
}

/** Run `cases` mutation cases over the images, round-robin. */
export async function runFuzz(images: FuzzImage[], cases: number, seed: number, onlyKinds?: readonly RegionKind[]): Promise<{ failures: FuzzFailure[]; stats: FuzzStats }> {
  const failures: FuzzFailure[] = [];
  const stats: FuzzStats = { cases: 0, opened: 0, errorsByCode: {}, byKind: {} };
  const pool = onlyKinds ? images.filter((img) => img.regions.some((r) => onlyKinds.includes(r.kind))) : images;
  for (let i = 0; i < cases && pool.length; i++) {
    const caseSeed = (seed + i * 7919) >>> 0;
    const rng = new Prng(caseSeed);
    const img = pool[i % pool.length];
    // Pick the kind of structure first, so the few superblock and AG header regions get their share.
    const kinds = [...new Set(img.regions.map((r) => r.kind))].filter((k) => !onlyKinds || onlyKinds.includes(k));
    const kind = kinds[rng.below(kinds.length)];
    const ofKind = img.regions.filter((r) => r.kind === kind);
    const region = ofKind[rng.below(ofKind.length)];
    const { offset, saved } = mutate(img.data, region, rng);
    if (img.v5 && rng.below(2) === 0) restamp(img.data, region);
    stats.cases++;
    stats.byKind[region.kind] = (stats.byKind[region.kind] ?? 0) + 1;
    try {
      const { opened, errors } = await exercise(new MemorySource(img.data, img.name, undefined, undefined, 100_000));
      if (opened) stats.opened++;
      for (const err of errors) {
        if (isTyped(err)) {
          const code = (err as { code: string }).code;
          stats.errorsByCode[code] = (stats.errorsByCode[code] ?? 0) + 1;
        } else failures.push({ image: img.name, seed: caseSeed, region: `${region.kind} at ${region.offset}`, error: err });
      }
    } catch (err) {
      failures.push({ image: img.name, seed: caseSeed, region: `${region.kind} at ${region.offset}`, error: err });
    } finally {
      saved.copy(img.data, offset);
    }
  }
  return { failures, stats };
}

/** A tree with every directory form, symlinks short and long, a fragmented file and attributes, in `dir`. */
async function fill(dir: string, kernel: boolean): Promise<void> {
  await mkdir(join(dir, 'small'));
  await writeFile(join(dir, 'small', 'a'), 'a');
  await mkdir(join(dir, 'block'));
  for (let i = 0; i < 30; i++) await writeFile(join(dir, 'block', `b-${i}`), pseudoRandom(i * 31, i));
  await mkdir(join(dir, 'big'));
  for (let i = 0; i < 300; i++) await writeFile(join(dir, 'big', `e-${i}-${'z'.repeat(i % 30)}`), '');
  await writeFile(join(dir, 'medium'), pseudoRandom(200_000, 3));
  await symlink('short-target', join(dir, 'fast-link'));
  await symlink('t'.repeat(700), join(dir, 'remote-link'));
  if (!kernel) return;
  const cmds: string[] = [];
  for (let i = 0; i < 60; i++) cmds.push('-c', `pwrite -q ${i * 8192} 4096`);
  await sh('xfs_io', ['-f', ...cmds, join(dir, 'fragmented')]);
  await writeFile(join(dir, 'attrs'), 'x');
  await sh('setfattr', ['-n', 'user.sf', '-v', 'small', join(dir, 'attrs')]);
  await writeFile(join(dir, 'attrs-leaf'), 'x');
  await sh('setfattr', ['-n', 'user.long', '-v', 'v'.repeat(400), join(dir, 'attrs-leaf')]);
  await writeFile(join(dir, 'attrs-node'), 'x');
  const many: string[] = [`# file: ${join(dir, 'attrs-node')}`];
  for (let i = 0; i < 150; i++) many.push(`user.n${i}="${'w'.repeat(60)}"`);
  many.push(`user.remote=0x${pseudoRandom(9000, 9).toString('hex')}`, '');
  await sh('setfattr', ['--restore=-'], { input: many.join('\n') + '\n' });
  await sh('setfacl', ['-m', 'u:1234:rwx', join(dir, 'attrs')]);
}

/** The corpus: small v5 and v4 images (v5 filled by the kernel when loop mounts work). */
export async function buildFuzzImages(options: { kernel: boolean }): Promise<FuzzImage[]> {
  const dir = scratchDir('xfs-fuzz');
  const specs: { name: string; args: string[]; v5: boolean; dirty?: boolean }[] = [
    { name: 'xfs-v5', args: [], v5: true },
    { name: 'xfs-v5-1k-rmapbt', args: ['-b', 'size=1024', '-m', 'rmapbt=1'], v5: true },
    { name: 'xfs-v4', args: ['-m', 'crc=0'], v5: false },
    { name: 'xfs-v5-log-needs-recovery', args: [], v5: true, dirty: true },
  ];
  const images: FuzzImage[] = [];
  for (const spec of specs) {
    if (spec.dirty && !options.kernel) continue;
    const path = join(dir, `${spec.name}.img`);
    await sh('truncate', ['-s', '32M', path]);
    if (spec.v5 && options.kernel) {
      await sh('mkfs.xfs', ['-q', '-f', ...spec.args, path], { env: SMALL_FS_ENV });
      const m = await mountImage(path, { readWrite: true, options: ['allocsize=4096'] });
      try {
        if (spec.dirty) {
          await writeFile(join(m.dir, 'doomed'), pseudoRandom(1 << 20, 1));
          await sh('sync', ['-f', m.dir]);
        }
        await fill(m.dir, true);
        if (spec.dirty) {
          await rm(join(m.dir, 'doomed'));
          await sh('xfs_io', ['-x', '-c', 'shutdown -f', m.dir]);
        }
      } finally {
        await m.unmount();
      }
    } else {
      // mkfs.xfs 6.1 writes v5 remote symlinks without their header; only v4 gets one from a prototype.
      const src = join(dir, `${spec.name}-src`);
      await mkdir(src);
      await fill(src, false);
      const lines = ['/dev/null', '0 0', 'd--755 0 0', ` medium ---644 0 0 ${join(src, 'medium')}`, ' fast-link l--777 0 0 short-target'];
      if (!spec.v5) lines.push(` remote-link l--777 0 0 ${'t'.repeat(700)}`);
      for (const d of ['small', 'block', 'big']) {
        lines.push(` ${d} d--755 0 0`);
        const { readdir } = await import('node:fs/promises');
        for (const f of await readdir(join(src, d))) lines.push(`  ${f} ---644 0 0 ${join(src, d, f)}`);
        lines.push(' $');
      }
      lines.push('$');
      await writeFile(join(dir, `${spec.name}.proto`), lines.join('\n') + '\n');
      await sh('mkfs.xfs', ['-q', '-f', ...spec.args, '-p', join(dir, `${spec.name}.proto`), path], { env: SMALL_FS_ENV });
    }
    const data = await readFile(path);
    images.push({ name: spec.name, data, regions: await findRegions(spec.name, data), v5: spec.v5 });
    await rm(path);
  }
  return images;
}

export { ReadBudgetExceeded };
