/**
 * Mutation fuzzing of NTFS images: a small real volume (mkntfs, filled
 * through ntfs-3g with a multi-block directory, compressed, sparse and
 * fragmented files, links and streams) is loaded into memory; each case
 * mutates a few bytes of one structure — an MFT record's header or
 * attributes, a runlist (mapping pairs), an index block, the boot sector —
 * mostly keeping the update sequence slots intact so the parsers behind the
 * fixups are reached, then opens the volume, takes statfs and walks the
 * tree (stat, list, read, readlink, streams, lookups). Every failure must be
 * a typed FilesystemError; a read budget per case turns a loop into a
 * failure instead of a hang; small limits keep memory bounded.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NtfsError, NtfsFilesystem } from '../../../src/filesystems/ntfs/index.ts';
import { ATTR, ATTR_TYPE, I30, MFT } from '../../../src/filesystems/ntfs/layout.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { MemorySource, ReadBudgetExceeded } from '../../../../../test/support/memorySource.ts';
import { Prng } from '../../../../../test/support/prng.ts';
import { mkntfs, withNtfs3g } from '../../../../../test/support/ntfs3g.ts';
import { sh } from '../../../../../test/support/run.ts';
import { compressibleText, pseudoRandom, symlinkReparse } from './ntfsFixtures.ts';

export type RegionKind = 'boot sector' | 'MFT record header' | 'MFT record attributes' | 'runlist' | 'index block' | 'index root';

interface Region {
  kind: RegionKind;
  offset: number;
  length: number;
}

export interface FuzzCorpus {
  data: Buffer;
  regions: Region[];
}

export interface FuzzStats {
  cases: number;
  opened: number;
  walked: number;
  errorsByCode: Record<string, number>;
  byKind: Record<string, number>;
}

export interface FuzzFailure {
  seed: number;
  region: string;
  error: unknown;
}

/** Limits small enough that no mutation can make a case allocate much. */
export const FUZZ_LIMITS = { maxReadBytes: 1024 * 1024, maxIndexBytes: 8 * 1024 * 1024, maxMetadataBytes: 256 * 1024, maxDirectoryEntries: 20_000 };
const READ_BUDGET = 60_000;

/** The volume every case mutates, and where its structures are. */
export async function buildCorpus(): Promise<FuzzCorpus> {
  const image = await mkntfs(join(scratchDir('ntfs-fuzz'), 'fuzz.img'), { sizeMiB: 12, label: 'fuzz' });
  await withNtfs3g(image, { readWrite: true, options: ['streams_interface=windows'] }, async (m) => {
    await sh('mkdir', ['-p', join(m, 'dir', 'sub'), join(m, 'comp'), join(m, 'big')]);
    await writeFile(join(m, 'dir', 'small'), 'small\n');
    await writeFile(join(m, 'dir', 'sub', 'nonres'), pseudoRandom(20_000, 1));
    await writeFile(join(m, 'dir', 'sub', 'nonres:stream'), 'stream\n');
    await sh('setfattr', ['-h', '-n', 'system.ntfs_attrib_be', '-v', '0x00000800', join(m, 'comp')]);
    await writeFile(join(m, 'comp', 'text'), compressibleText(150_000));
    for (let i = 0; i < 160; i++) await writeFile(join(m, 'big', `file-${i}-${'x'.repeat(i % 30)}`), i % 10 === 0 ? pseudoRandom(3000, i) : '');
    const fh = await import('node:fs/promises').then((f) => f.open(join(m, 'checker'), 'w'));
    try {
      for (let i = 0; i < 200; i++) await fh.write(pseudoRandom(50, i), 0, 50, i * 8192);
    } finally {
      await fh.close();
    }
    await writeFile(join(m, 'dir', 'link-target'), 't\n');
    await sh('ln', [join(m, 'dir', 'link-target'), join(m, 'hard')]);
    await writeFile(join(m, 'symlink'), '');
    await sh('setfattr', ['-h', '-n', 'system.ntfs_reparse_data', '-v', `0x${symlinkReparse('dir\\link-target', 'dir\\link-target', true).toString('hex')}`, join(m, 'symlink')]);
    await sh('ln', ['-s', 'dir/small', join(m, 'interix-link')]);
  });
  const data = await readFile(image);
  const fs = await NtfsFilesystem.open(new MemorySource(data, 'fuzz.img'));
  const regions: Region[] = [{ kind: 'boot sector', offset: 0, length: 512 }];
  const rs = fs.volume.boot.mftRecordSize;
  const cs = fs.volume.clusterSize;
  for await (const e of fs.inodes()) {
    const at = fs.volume.mft.offsetOf(e.ino);
    if (at === undefined) continue;
    regions.push({ kind: 'MFT record header', offset: at, length: 0x38 });
    const rec = data.subarray(at, at + rs);
    let a = rec.readUInt16LE(MFT.attrs_offset);
    regions.push({ kind: 'MFT record attributes', offset: at + a, length: Math.max(8, rec.readUInt32LE(MFT.bytes_in_use) - a) });
    // Mapping pairs and index roots, found by walking the (unfixed, but mostly intact) attribute headers.
    for (let steps = 0; steps < 64 && a + 24 <= rs; steps++) {
      const type = rec.readUInt32LE(a);
      const len = rec.readUInt32LE(a + 4);
      if (type === ATTR_TYPE.END || len < 24 || a + len > rs) break;
      if (rec[a + ATTR.non_resident]) {
        const mp = rec.readUInt16LE(a + ATTR.mapping_pairs_offset);
        if (mp < len) regions.push({ kind: 'runlist', offset: at + a + mp, length: len - mp });
      } else if (type === ATTR_TYPE.INDEX_ROOT) {
        regions.push({ kind: 'index root', offset: at + a + rec.readUInt16LE(a + ATTR.value_offset), length: rec.readUInt32LE(a + ATTR.value_length) });
      }
      a += len;
    }
    if (e.stat.type === 'directory') {
      const inode = await fs.inode(e.ino);
      const alloc = inode.attributes.find((x) => x.type === ATTR_TYPE.INDEX_ALLOCATION && x.name === I30);
      for (const r of alloc?.runs ?? []) if (r.lcn !== undefined) regions.push({ kind: 'index block', offset: r.lcn * cs, length: r.length * cs });
    }
  }
  return { data, regions };
}

/** One mutated case: open, statfs, walk. Returns whether it opened and walked, throws what the driver threw. */
async function runCase(src: MemorySource, errorsByCode: Record<string, number>): Promise<{ opened: boolean; walked: boolean }> {
  /** Typed errors deeper in the walk are expected (counted); anything else propagates. */
  const swallowTyped = (err: unknown): void => {
    if (!(err instanceof NtfsError)) throw err;
    const key = `walk ${err.code}`;
    errorsByCode[key] = (errorsByCode[key] ?? 0) + 1;
  };
  const fs = await NtfsFilesystem.open(src, { limits: FUZZ_LIMITS });
  await fs.statfs().catch(swallowTyped);
  let seen = 0;
  const visit = async (ino: number, depth: number): Promise<void> => {
    if (depth > 12 || ++seen > 600) return;
    const st = await fs.getattr(ino);
    if (st.type === 'symlink') await fs.readlink(ino);
    if (st.type === 'file') {
      await fs.read(ino, 0, 65536);
      if (st.size > 131072) await fs.read(ino, Math.floor(st.size / 2), 65536);
      for (const name of await fs.listxattr(ino)) await fs.getxattr(ino, name);
    }
    if (st.type === 'directory') {
      const entries = await fs.readdir(ino);
      for (const e of entries.slice(0, 200)) {
        await fs.lookup(ino, e.name);
        await visit(e.ino, depth + 1).catch(swallowTyped);
      }
      await fs.lookupIgnoringCase(ino, 'FILE-77-' + 'X'.repeat(17)).catch(swallowTyped);
    }
  };
  await visit(fs.rootIno, 0);
  return { opened: true, walked: true };
}

function mutate(rng: Prng, src: MemorySource, region: Region): void {
  const n = 1 + rng.below(8);
  for (let i = 0; i < n; i++) {
    let off = region.offset + rng.below(Math.max(1, region.length));
    // Most mutations keep the update sequence slots, so the fixups pass and the parsers behind them are reached.
    if (off % 512 >= 510 && rng.float() < 0.9) off -= 2;
    const unit = src.unit(Math.floor(off / 512));
    const k = off % 512;
    const r = rng.float();
    if (r < 0.4) unit[k] = rng.below(256);
    else if (r < 0.6) unit[k] = [0, 0xff, 0x80, 0x7f, 1][rng.below(5)];
    else if (r < 0.8) unit[k] = (unit[k] + (rng.below(2) ? 1 : 255)) & 0xff;
    else if (k + 4 <= 512) unit.writeUInt32LE([0, 0xffffffff, 0x7fffffff, 0x80000000, rng.next()][rng.below(5)] >>> 0, k);
    src.patch(Math.floor(off / 512) * 512, unit);
  }
}

export async function runFuzz(corpus: FuzzCorpus, cases: number, seed: number): Promise<{ failures: FuzzFailure[]; stats: FuzzStats }> {
  const failures: FuzzFailure[] = [];
  const stats: FuzzStats = { cases: 0, opened: 0, walked: 0, errorsByCode: {}, byKind: {} };
  for (let c = 0; c < cases; c++) {
    const caseSeed = (seed + c * 0x9e3779b1) >>> 0;
    const rng = new Prng(caseSeed);
    // A kind first, then one of its regions: the boot sector is one region among hundreds of records.
    const kinds = [...new Set(corpus.regions.map((r) => r.kind))];
    const kind = kinds[rng.below(kinds.length)];
    const ofKind = corpus.regions.filter((r) => r.kind === kind);
    const region = ofKind[rng.below(ofKind.length)];
    const src = new MemorySource(corpus.data, `fuzz#${c}.img`, undefined, undefined, READ_BUDGET);
    mutate(rng, src, region);
    if (rng.float() < 0.15) mutate(rng, src, corpus.regions[rng.below(corpus.regions.length)]);
    stats.cases++;
    stats.byKind[region.kind] = (stats.byKind[region.kind] ?? 0) + 1;
    try {
      const r = await runCase(src, stats.errorsByCode);
      if (r.opened) stats.opened++;
      if (r.walked) stats.walked++;
    } catch (err) {
      if (err instanceof NtfsError) {
        stats.errorsByCode[err.code] = (stats.errorsByCode[err.code] ?? 0) + 1;
        if (!err.userFacing || !err.message.includes(`fuzz#${c}.img`)) failures.push({ seed: caseSeed, region: region.kind, error: new Error(`error does not name the image: ${err.message}`) });
      } else {
        failures.push({ seed: caseSeed, region: region.kind, error: err instanceof ReadBudgetExceeded ? new Error(`case ${c}: ${err.message}`) : err });
      }
    }
    if (src.largestRead > 4 * 1024 * 1024) failures.push({ seed: caseSeed, region: region.kind, error: new Error(`a read of ${src.largestRead} bytes`) });
  }
  return { failures, stats };
}
