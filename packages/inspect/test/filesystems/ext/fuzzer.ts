/**
 * Mutation fuzzing of ext images: small real images (made by mkfs, and by a
 * kernel mount for journals that need recovery) are loaded into memory; each
 * case mutates bytes of one structure (superblock, group descriptors, inodes,
 * extent and indirect blocks, directory blocks, journal blocks), sometimes
 * re-stamping the checksums so the parsers behind them are reached, then
 * opens the filesystem, takes statfs and walks the whole tree. Every failure
 * must be a typed ExtError; a read budget per case turns a loop into a
 * failure instead of a hang; limits keep memory bounded.
 */
import { join } from 'node:path';
import { readFile, writeFile, mkdir, truncate, open as openFile, rm } from 'node:fs/promises';
import { ExtError, ExtFilesystem } from '../../../src/filesystems/ext/index.ts';
import { crc32c } from '../../../src/filesystems/ext/checksum.ts';
import { descriptorBlockLocation, groupDescChecksum, hasGroupDescChecksum } from '../../../src/filesystems/ext/groupDescriptor.ts';
import { GOOD_OLD_INODE_SIZE, INODE_FLAGS, inodeChecksum, inodeLocation, readInode, S_IFDIR, S_IFMT } from '../../../src/filesystems/ext/inode.ts';
import { mapBlocks } from '../../../src/filesystems/ext/mapping.ts';
import { openJournal } from '../../../src/filesystems/ext/journal/index.ts';
import { INCOMPAT, hasIncompat } from '../../../src/filesystems/ext/superblock.ts';
import type { ExtVolume } from '../../../src/filesystems/ext/volume.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { MemorySource, ReadBudgetExceeded } from '../../../../../test/support/memorySource.ts';
import { Prng as Rng } from '../../../../../test/support/prng.ts';
import { sh } from '../../../../../test/support/run.ts';
import { mountImage } from '../../../../../test/support/kernel.ts';
import type { Filesystem } from '../../../src/filesystems/filesystem.ts';

export { MemorySource, ReadBudgetExceeded };

type RegionKind = 'superblock' | 'group descriptors' | 'inode' | 'extent block' | 'indirect block' | 'directory block' | 'journal block';

interface Region {
  kind: RegionKind;
  offset: number;
  length: number;
  /** For inodes: the inode number; for extent blocks: the owning inode. */
  ino?: number;
  generation?: number;
}

export interface FuzzImage {
  name: string;
  data: Buffer;
  regions: Region[];
}

export interface FuzzStats {
  cases: number;
  opened: number;
  errorsByCode: Record<string, number>;
  byKind: Record<string, number>;
}

export { Rng };

const LIMITS = { maxReadBytes: 1 << 20, maxDirectoryBytes: 8 << 20, maxDirectoryEntries: 50_000, cacheBytes: 1 << 20 };

/** The structures of a clean image worth mutating, found with the driver itself. */
export async function findRegions(name: string, data: Buffer): Promise<Region[]> {
  const fs = await ExtFilesystem.open(new MemorySource(data, name), { limits: LIMITS, replayJournal: false });
  const vol: ExtVolume = fs.volume;
  const sb = vol.sb;
  const bs = sb.blockSize;
  const regions: Region[] = [{ kind: 'superblock', offset: 1024, length: 1024 }];
  for (let nr = 0; nr < sb.gdbCount; nr++) regions.push({ kind: 'group descriptors', offset: descriptorBlockLocation(sb, nr) * bs, length: Math.min(bs, sb.groupCount * sb.descSize) });
  const seen = new Set<number>();
  const visitInode = async (ino: number) => {
    if (seen.has(ino) || seen.size > 400) return;
    seen.add(ino);
    const inode = await readInode(vol, ino, { special: true });
    const loc = inodeLocation(vol, ino);
    regions.push({ kind: 'inode', offset: loc.block * bs + loc.offsetInBlock, length: sb.s_inode_size, ino, generation: inode.i_generation });
    const dataBlocks = Math.min(Math.ceil(inode.size / bs), 1 << 16);
    if (inode.i_flags & INODE_FLAGS.INLINE_DATA || dataBlocks === 0) return;
    if (inode.i_flags & INODE_FLAGS.EXTENTS) {
      if (inode.i_block.readUInt16LE(6) > 0) {
        const entries = inode.i_block.readUInt16LE(2);
        for (let i = 0; i < entries; i++) {
          const child = inode.i_block.readUInt32LE(12 + i * 12 + 4) + inode.i_block.readUInt16LE(12 + i * 12 + 8) * 2 ** 32;
          regions.push({ kind: 'extent block', offset: child * bs, length: bs, ino, generation: inode.i_generation });
        }
      }
    } else {
      for (let slot = 12; slot < 15; slot++) {
        const ptr = inode.i_block.readUInt32LE(slot * 4);
        if (ptr) regions.push({ kind: 'indirect block', offset: ptr * bs, length: bs, ino });
      }
    }
    if ((inode.i_mode & S_IFMT) === S_IFDIR) {
      for (const run of await mapBlocks(vol, inode, 0, dataBlocks)) {
        if (run.pblk === undefined) continue;
        for (let i = 0; i < Math.min(run.length, 8); i++) regions.push({ kind: 'directory block', offset: (run.pblk + i) * bs, length: bs, ino, generation: inode.i_generation });
      }
      for (const e of await fs.readdir(ino)) await visitInode(e.ino);
    }
  };
  await visitInode(2);
  if (sb.s_journal_inum) {
    await visitInode(sb.s_journal_inum).catch(() => undefined);
    if (hasIncompat(sb, INCOMPAT.RECOVER)) {
      const journal = await openJournal(vol, sb.s_journal_inum);
      regions.push({ kind: 'journal block', offset: (await journal.pblk(0)) * bs, length: Math.min(bs, 1024) });
      const start = journal.jsb.s_start || journal.jsb.s_first;
      for (let i = 0; i < 48 && start + i < journal.jsb.last; i++) regions.push({ kind: 'journal block', offset: (await journal.pblk(start + i)) * bs, length: bs });
    }
  }
  return regions;
}

const INTERESTING32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** Apply 1..4 mutations inside the region; returns the saved bytes to restore. */
function mutate(data: Buffer, region: Region, rng: Rng): { offset: number; saved: Buffer } {
  const saved = Buffer.from(data.subarray(region.offset, region.offset + region.length));
  const n = 1 + rng.below(4);
  for (let k = 0; k < n; k++) {
    const pos = region.offset + rng.below(region.length);
    switch (rng.below(5)) {
      case 0:
        data[pos] = rng.below(256);
        break;
      case 1:
        data[pos] ^= 1 << rng.below(8);
        break;
      case 2: {
        const p = pos - (pos % 2);
        if (p + 2 <= region.offset + region.length) data.writeUInt16LE(INTERESTING32[rng.below(INTERESTING32.length)] & 0xffff, p);
        break;
      }
      case 3: {
        const p = pos - (pos % 4);
        if (p + 4 <= region.offset + region.length) data.writeUInt32LE(INTERESTING32[rng.below(INTERESTING32.length)], p);
        break;
      }
      default: {
        const p = pos - (pos % 4);
        if (p + 4 <= region.offset + region.length) data.writeUInt32BE(INTERESTING32[rng.below(INTERESTING32.length)], p);
      }
    }
  }
  return { offset: region.offset, saved };
}

/** Re-stamp the checksum of the mutated structure, so the parsers behind the check are reached. */
function restamp(data: Buffer, region: Region, vol: ExtVolume): void {
  const sb = vol.sb;
  if (region.kind === 'superblock' && sb.metadataCsum) {
    data.writeUInt32LE(crc32c(0xffffffff, data, 1024, 1024 + 0x3fc), 1024 + 0x3fc);
  } else if (region.kind === 'group descriptors' && hasGroupDescChecksum(sb)) {
    const first = Math.round((region.offset / sb.blockSize - descriptorBlockLocation(sb, 0)) * sb.descPerBlock);
    for (let k = 0; k * sb.descSize < region.length; k++) {
      const group = first + k;
      if (group < 0 || group >= sb.groupCount) continue;
      const off = region.offset + k * sb.descSize;
      const desc = data.subarray(off, off + sb.descSize);
      desc.writeUInt16LE(groupDescChecksum(sb, group, desc), 0x1e);
    }
  } else if (region.kind === 'inode' && sb.metadataCsum && region.ino) {
    const raw = data.subarray(region.offset, region.offset + region.length);
    const extra = raw.length > GOOD_OLD_INODE_SIZE ? raw.readUInt16LE(0x80) : 0;
    const hasHi = GOOD_OLD_INODE_SIZE + extra >= 0x84;
    const le = Buffer.alloc(4);
    le.writeUInt32LE(region.ino);
    let seed = crc32c(sb.csumSeed, le);
    le.writeUInt32LE(raw.readUInt32LE(0x64));
    seed = crc32c(seed, le);
    const c = inodeChecksum(Buffer.from(raw), seed, hasHi);
    raw.writeUInt16LE(c & 0xffff, 0x7c);
    if (raw.length > GOOD_OLD_INODE_SIZE && hasHi) raw.writeUInt16LE(c >>> 16, 0x82);
  } else if (region.kind === 'directory block' && sb.metadataCsum && region.ino !== undefined && region.generation !== undefined) {
    const block = data.subarray(region.offset, region.offset + region.length);
    const t = block.length - 12;
    if (block.readUInt16LE(t + 4) !== 12 || block.readUInt8(t + 7) !== 0xde) return;
    block.writeUInt32LE(crc32c(inodeSeed(sb.csumSeed, region.ino, region.generation), block, 0, t), t + 8);
  } else if (region.kind === 'extent block' && sb.metadataCsum && region.ino !== undefined && region.generation !== undefined) {
    const block = data.subarray(region.offset, region.offset + region.length);
    const max = block.readUInt16LE(4);
    const tail = 12 + max * 12;
    if (tail + 4 > block.length) return;
    const le = Buffer.alloc(4);
    le.writeUInt32LE(region.ino);
    let seed = crc32c(sb.csumSeed, le);
    le.writeUInt32LE(region.generation);
    seed = crc32c(seed, le);
    block.writeUInt32LE(crc32c(seed, block, 0, tail), tail);
  }
}

function inodeSeed(fsSeed: number, ino: number, generation: number): number {
  const le = Buffer.alloc(4);
  le.writeUInt32LE(ino);
  const seed = crc32c(fsSeed, le);
  le.writeUInt32LE(generation);
  return crc32c(seed, le);
}

/** Open, statfs, and walk everything; errors inside one file do not stop the walk. */
async function exercise(source: MemorySource): Promise<{ opened: boolean; errors: unknown[] }> {
  const errors: unknown[] = [];
  let fs: Filesystem;
  try {
    fs = await ExtFilesystem.open(source, { limits: LIMITS });
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
  // Lookups before any listing go through the htree index of hashed directories.
  const fresh = await attempt(() => ExtFilesystem.open(source, { limits: LIMITS }));
  if (fresh) {
    const hashed = await attempt(() => fresh.lookup(fresh.rootIno, 'hashed'));
    if (hashed) for (const n of ['h-0-', 'h-17-zzzzzzzzzzzzzzzzz', 'h-199-zzzzzzzzzzzzzzzzzzz', 'missing']) await attempt(() => fresh.lookup(hashed, n));
  }
  let visited = 0;
  const visit = async (ino: number, depth: number): Promise<void> => {
    if (++visited > 600 || depth > 12) return;
    const st = await attempt(() => fs.getattr(ino));
    if (!st) return;
    if (st.type === 'symlink') await attempt(() => fs.readlink(ino));
    if (st.type === 'file') {
      for (let off = 0; off < Math.min(st.size, 4 << 20); off += 1 << 20) await attempt(() => fs.read(ino, off, 1 << 20));
      await attempt(() => fs.read(ino, Math.max(0, st.size - 10), 4096));
    }
    if (st.type === 'directory') {
      const entries = await attempt(() => fs.readdir(ino));
      await attempt(() => fs.lookup(ino, '..'));
      for (const e of (entries ?? []).slice(0, 200)) {
        await attempt(() => fs.lookup(ino, e.name));
        await visit(e.ino, depth + 1);
      }
    }
  };
  await visit(fs.rootIno, 0);
  return { opened: true, errors };
}

export interface FuzzFailure {
  image: string;
  seed: number;
  region: string;
  error: unknown;
}

/**
 * Run `cases` mutation cases over the images, round-robin; returns the
 * failures (errors that are not typed ExtErrors) and statistics.
 */
export async function runFuzz(images: FuzzImage[], cases: number, seed: number): Promise<{ failures: FuzzFailure[]; stats: FuzzStats }> {
  const failures: FuzzFailure[] = [];
  const stats: FuzzStats = { cases: 0, opened: 0, errorsByCode: {}, byKind: {} };
  const vols = new Map<string, ExtVolume>();
  for (const img of images) vols.set(img.name, (await ExtFilesystem.open(new MemorySource(img.data, img.name), { replayJournal: false })).volume);
  for (let i = 0; i < cases; i++) {
    const caseSeed = (seed + i * 7919) >>> 0;
    const rng = new Rng(caseSeed);
    const img = images[i % images.length];
    // Pick the kind of structure first, so the few superblock and descriptor regions get their share.
    const kinds = [...new Set(img.regions.map((r) => r.kind))];
    const kind = kinds[rng.below(kinds.length)];
    const ofKind = img.regions.filter((r) => r.kind === kind);
    const region = ofKind[rng.below(ofKind.length)];
    const { offset, saved } = mutate(img.data, region, rng);
    if (rng.below(2) === 0) restamp(img.data, region, vols.get(img.name)!);
    stats.cases++;
    stats.byKind[region.kind] = (stats.byKind[region.kind] ?? 0) + 1;
    try {
      const { opened, errors } = await exercise(new MemorySource(img.data, img.name, undefined, undefined, 200_000));
      if (opened) stats.opened++;
      for (const err of errors) {
        if (err instanceof ExtError) stats.errorsByCode[err.code] = (stats.errorsByCode[err.code] ?? 0) + 1;
        else failures.push({ image: img.name, seed: caseSeed, region: `${region.kind} at ${region.offset}`, error: err });
      }
    } catch (err) {
      failures.push({ image: img.name, seed: caseSeed, region: `${region.kind} at ${region.offset}`, error: err });
    } finally {
      saved.copy(img.data, offset);
    }
  }
  return { failures, stats };
}

/** The corpus: small images of each layout; journals that need recovery when the kernel can loop-mount. */
export async function buildFuzzImages(options: { withJournalReplay: boolean }): Promise<FuzzImage[]> {
  const dir = scratchDir('ext-fuzz');
  const src = join(dir, 'src');
  await mkdir(join(src, 'dir', 'sub'), { recursive: true });
  for (let i = 0; i < 40; i++) await writeFile(join(src, 'dir', `entry-${i}-${'n'.repeat(i % 20)}`), Buffer.alloc(i * 37, i));
  await writeFile(join(src, 'dir', 'sub', 'small'), 'small\n');
  await writeFile(join(src, 'medium'), Buffer.alloc(300 * 1024 + 5, 7));
  // Sparse with many separate chunks: more than 4 extents, so the extent tree has an index level.
  const frag = join(src, 'fragmented');
  await writeFile(frag, '');
  await truncate(frag, 2 << 20);
  const fh = await openFile(frag, 'r+');
  try {
    for (let i = 0; i < 12; i++) await fh.write(Buffer.alloc(1024, i + 1), 0, 1024, i * 150_000);
  } finally {
    await fh.close();
  }
  const { symlink } = await import('node:fs/promises');
  await symlink('short-target', join(src, 'fast-link'));
  await symlink('t'.repeat(300), join(src, 'slow-link'));

  const specs: { name: string; mkfs: string; args: string[] }[] = [
    { name: 'ext4-csum-1k', mkfs: 'mkfs.ext4', args: ['-b', '1024'] },
    { name: 'ext4-nocsum-inline-1k', mkfs: 'mkfs.ext4', args: ['-b', '1024', '-O', '^metadata_csum,^64bit,inline_data'] },
    { name: 'ext3-1k', mkfs: 'mkfs.ext3', args: ['-b', '1024'] },
    { name: 'ext2-4k', mkfs: 'mkfs.ext2', args: ['-b', '4096'] },
  ];
  const images: FuzzImage[] = [];
  for (const spec of specs) {
    const path = join(dir, `${spec.name}.img`);
    await sh('truncate', ['-s', '8M', path]);
    await sh(spec.mkfs, ['-q', '-F', ...spec.args, '-d', src, path]);
    const data = await readFile(path);
    images.push({ name: spec.name, data, regions: await findRegions(spec.name, data) });
    await rm(path);
  }
  if (options.withJournalReplay) {
    for (const spec of [{ name: 'ext4-csum-needs-recovery', args: ['-b', '1024'] }, { name: 'ext4-nocsum-needs-recovery', args: ['-b', '1024', '-O', '^metadata_csum,^64bit'] }]) {
      const path = join(dir, `${spec.name}.img`);
      await sh('truncate', ['-s', '8M', path]);
      await sh('mkfs.ext4', ['-q', '-F', ...spec.args, '-d', src, path]);
      const m = await mountImage(path, { readWrite: true });
      let data: Buffer;
      try {
        await mkdir(join(m.dir, 'hashed'));
        for (let i = 0; i < 200; i++) await writeFile(join(m.dir, 'hashed', `h-${i}-${'z'.repeat(i % 30)}`), '');
        await mkdir(join(m.dir, 'new'));
        for (let i = 0; i < 60; i++) await writeFile(join(m.dir, 'new', `f${i}`), Buffer.alloc(i * 50, i));
        await sh('sync', [join(m.dir, 'new', 'f59')]);
        await rm(join(m.dir, 'new'), { recursive: true });
        await writeFile(join(m.dir, 'after'), Buffer.alloc(5000, 3));
        await sh('sync', [join(m.dir, 'after')]);
        data = await readFile(path);
      } finally {
        await m.unmount();
      }
      images.push({ name: spec.name, data, regions: await findRegions(spec.name, data) });
      await rm(path);
    }
  }
  return images;
}
