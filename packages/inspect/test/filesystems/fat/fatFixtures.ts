/**
 * FAT fixtures and oracles, all from the real tools (this kernel has no vfat
 * driver): mkfs.vfat makes the volume, mtools fills it (mcopy -s -m keeps the
 * source tree's modification times, mmd, mattrib, mdel), and the answers we
 * compare with come from mtools (mdir -/ -b -a for the tree, mcopy out for
 * contents and times, mattrib for attributes, mshowfat for cluster chains,
 * minfo and mlabel for geometry and label) and from fsck.fat -n -v for the
 * cluster counts. Every mtools call runs with TZ=UTC (FAT times are read as
 * UTC, see fat/time.ts) and a UTF-8 locale (names pass as UTF-8).
 */
import { closeSync, mkdirSync, openSync, readSync, readdirSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { sh } from '../../../../../test/support/run.ts';
import { pseudoRandom } from '../ext/fixtures.ts';

export { pseudoRandom };

export const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: '1', LC_ALL: 'C.UTF-8', TZ: 'UTC' };

export function mtools(tool: string, args: string[]): Promise<string> {
  return sh(tool, args, { env: MTOOLS_ENV });
}

/** A source tree: path → content (a trailing "/" makes an empty directory); mtimes set on files, in seconds. */
export interface TreeSpec {
  files: Record<string, string | Buffer>;
  mtimes?: Record<string, number>;
}

export interface FatFixture {
  name: string;
  path: string;
  spec: TreeSpec;
}

export interface BuildOptions {
  sizeBytes: number;
  mkfsArgs: string[];
  tree: TreeSpec;
  /** mtools work after the tree is copied in (attributes, deletions, fragmentation). */
  after?: (image: string) => Promise<void>;
}

/** mkfs.vfat, then mcopy -s -m the tree in. */
export async function buildFat(name: string, options: BuildOptions): Promise<FatFixture> {
  const dir = scratchDir(`fat-${name}`);
  const src = join(dir, 'src');
  mkdirSync(src);
  for (const [p, content] of Object.entries(options.tree.files)) {
    const full = join(src, p);
    if (p.endsWith('/')) {
      mkdirSync(full, { recursive: true });
      continue;
    }
    mkdirSync(join(full, '..'), { recursive: true });
    writeFileSync(full, content);
  }
  for (const [p, t] of Object.entries(options.tree.mtimes ?? {})) utimesSync(join(src, p), t, t);
  const path = join(dir, `${name}.img`);
  await sh('truncate', ['-s', String(options.sizeBytes), path]);
  await sh('mkfs.vfat', [...options.mkfsArgs, path]);
  // Top-level files before directories: mtools 4.0.32 fails to grow a FAT32 root directory whose clusters are no longer contiguous ("No directory slots").
  const top = readdirSync(src, { withFileTypes: true })
    .sort((a, b) => Number(a.isDirectory()) - Number(b.isDirectory()))
    .map((d) => join(src, d.name));
  if (top.length) await mtools('mcopy', ['-s', '-m', '-i', path, ...top, '::/']);
  if (options.after) await options.after(path);
  return { name, path, spec: options.tree };
}

/** mdir -/ -b -a: every path of the tree, directories with a trailing "/", the root left out. */
export async function mtoolsTree(image: string): Promise<string[]> {
  const out = await mtools('mdir', ['-/', '-b', '-a', '-i', image, '::/']);
  return out
    .split('\n')
    .filter((l) => l.startsWith('::/'))
    .map((l) => l.slice(2))
    .sort();
}

/** mattrib -/: the attribute letters (A, R, S, H) of every path. */
export async function mtoolsAttributes(image: string): Promise<Map<string, string>> {
  const out = await mtools('mattrib', ['-/', '-i', image, '::/']);
  const map = new Map<string, string>();
  for (const line of out.split('\n')) {
    const at = line.indexOf('::/');
    if (at < 0) continue;
    map.set(line.slice(at + 2), line.slice(0, at).replace(/\s+/g, ''));
  }
  return map;
}

/** mcopy -s -m out of the image: a host directory with the tree, its files' contents and modification times. */
export async function mtoolsExtract(image: string): Promise<string> {
  const out = scratchDir('fat-out');
  const top = await mtools('mdir', ['-b', '-a', '-i', image, '::/']);
  if (top.trim()) await mtools('mcopy', ['-s', '-m', '-n', '-i', image, '::/*', out]);
  return out;
}

/** mshowfat: the clusters of a file, as [first, last] runs. */
export async function mtoolsClusters(image: string, path: string): Promise<Array<[number, number]>> {
  const out = await mtools('mshowfat', ['-i', image, `::${path}`]);
  const runs: Array<[number, number]> = [];
  for (const m of out.matchAll(/<(\d+)(?:-(\d+))?>/g)) runs.push([Number(m[1]), Number(m[2] ?? m[1])]);
  return runs;
}

export interface FsckCounts {
  clusterSize: number;
  dataClusters: number;
  usedClusters: number;
  fatBits: number;
}

/** fsck.fat -n -v: bytes per cluster, data clusters, and the used/total line. */
export async function fsckCounts(image: string): Promise<FsckCounts> {
  // Exit 1: fsck.fat found something to fix (and, with -n, fixed nothing); its counts are still printed.
  const r = await execa('fsck.fat', ['-n', '-v', image], { reject: false });
  if (r.exitCode !== 0 && r.exitCode !== 1) throw new Error(`fsck.fat -n -v ${image} failed (exit ${r.exitCode}): ${r.stderr}${r.stdout}`);
  const out = r.stdout;
  const num = (re: RegExp) => {
    const m = re.exec(out);
    if (!m) throw new Error(`fsck.fat output lacks ${re}:\n${out}`);
    return Number(m[1]);
  };
  return {
    clusterSize: num(/^\s*(\d+) bytes per cluster$/m),
    dataClusters: num(/^\s*(\d+) data clusters/m),
    usedClusters: num(/: \d+ files, (\d+)\/\d+ clusters$/m),
    fatBits: num(/FATs, (\d+) bit entries/),
  };
}

/** The tree as the driver lists it, in the same form as mtoolsTree. */
export async function driverTree(fs: { rootIno: number; readdir(ino: number): Promise<Array<{ name: string; ino: number; type: string }>> }): Promise<string[]> {
  const out: string[] = [];
  const visit = async (ino: number, prefix: string) => {
    for (const e of await fs.readdir(ino)) {
      if (e.type === 'directory') {
        out.push(`${prefix}${e.name}/`);
        await visit(e.ino, `${prefix}${e.name}/`);
      } else out.push(`${prefix}${e.name}`);
    }
  };
  await visit(fs.rootIno, '/');
  return out.sort();
}

/** The tree every FAT test volume starts from; `clusterSize` picks file sizes around cluster boundaries. */
export function standardTree(clusterSize: number, options: { depth?: number; many?: number; big?: boolean } = {}): TreeSpec {
  const files: Record<string, string | Buffer> = {
    'EFI/BOOT/BOOTX64.EFI': pseudoRandom(3 * clusterSize + 123, 1),
    'EFI/debian/grubx64.efi': pseudoRandom(2 * clusterSize, 2),
    'EFI/debian/grub.cfg': "search.fs_uuid 1234 root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n",
    'MixedCase.Txt': 'mixed\n',
    'UPPER.txt': 'upper base, lower extension\n',
    'lower.TXT': 'lower base, upper extension\n',
    'with space.txt': 'spaces\n',
    'a.b.c.d': 'dots\n',
    '.hidden-dot': 'a leading dot\n',
    'Ünïcödé long name.txt': 'accents\n',
    '日本語のファイル名.txt': 'kanji\n',
    'Ελληνικά αρχεία.txt': 'greek\n',
    'ÇA VA.TXT': 'code page 437 upper case\n',
    [`${'n'.repeat(251)}.dat`]: '255 characters\n',
    'empty-dir/': '',
    'attrs/readonly.txt': 'read only\n',
    'attrs/hidden.txt': 'hidden\n',
    'attrs/system.sys': 'system\n',
    'attrs/rodir/inside.txt': 'in a read-only directory\n',
  };
  for (const [i, size] of [0, 1, 511, 512, 513, clusterSize - 1, clusterSize, clusterSize + 1, 5 * clusterSize + 7, 100_000].entries()) {
    files[`sizes/size-${size}.bin`] = pseudoRandom(size, 10 + i);
  }
  if (options.big) files['sizes/big-1m.bin'] = pseudoRandom(1_000_000 + 3, 99);
  let deep = 'deep';
  for (let i = 1; i <= (options.depth ?? 12); i++) deep += `/level${String(i).padStart(2, '0')}`;
  files[`${deep}/leaf.txt`] = 'the bottom\n';
  for (let i = 0; i < (options.many ?? 0); i++) files[`many/file-${String(i).padStart(4, '0')} with a long name.txt`] = `${i}\n`;
  const mtimes: Record<string, number> = {
    'MixedCase.Txt': Date.UTC(2020, 1, 29, 13, 37, 41) / 1000, // a leap day, an odd second
    'UPPER.txt': Date.UTC(1999, 11, 31, 23, 59, 59) / 1000,
    'sizes/size-0.bin': Date.UTC(1980, 0, 1, 0, 0, 0) / 1000,
    '日本語のファイル名.txt': Date.UTC(2107, 11, 31, 23, 59, 58) / 1000,
  };
  return { files, mtimes };
}

/** Attributes, a deletion and a fragmented file, made with mtools after the copy. */
export async function decorate(image: string, clusterSize: number): Promise<void> {
  await mtools('mattrib', ['-i', image, '+r', '::/attrs/readonly.txt']);
  await mtools('mattrib', ['-i', image, '+h', '::/attrs/hidden.txt']);
  await mtools('mattrib', ['-i', image, '+s', '::/attrs/system.sys']);
  await mtools('mattrib', ['-i', image, '+r', '::/attrs/rodir']);
  // Fragmentation: fill, free every other file, then write one file into the gaps.
  const dir = scratchDir('fat-frag');
  await mtools('mmd', ['-i', image, '::/frag']);
  for (let i = 0; i < 8; i++) {
    const p = join(dir, `piece${i}.bin`);
    writeFileSync(p, pseudoRandom(2 * clusterSize, 200 + i));
    await mtools('mcopy', ['-i', image, p, `::/frag/piece${i}.bin`]);
  }
  for (let i = 0; i < 8; i += 2) await mtools('mdel', ['-i', image, `::/frag/piece${i}.bin`]);
  await rewindNextFree(image);
  const whole = join(dir, 'fragmented file.bin');
  writeFileSync(whole, pseudoRandom(11 * clusterSize + 5, 300));
  await mtools('mcopy', ['-i', image, whole, '::/frag/fragmented file.bin']);
  // A deleted file with a long name, whose slots stay behind.
  const gone = join(dir, 'a deleted long name.txt');
  writeFileSync(gone, 'gone\n');
  await mtools('mcopy', ['-i', image, gone, '::/frag/a deleted long name.txt']);
  await mtools('mdel', ['-i', image, '::/frag/a deleted long name.txt']);
}

/**
 * mtools allocates from FAT32's FSInfo next-free hint, past the clusters just
 * freed; pointing the hint back at cluster 2 (on the fixture, while building
 * it) makes the next file fill the gaps.
 */
async function rewindNextFree(image: string): Promise<void> {
  const fd = openSync(image, 'r+');
  try {
    const bs = Buffer.alloc(512);
    readSync(fd, bs, 0, 512, 0);
    if (bs.readUInt16LE(0x16) !== 0) return; // FAT12/16: no FSInfo, and mtools reuses freed clusters anyway
    const hint = Buffer.alloc(4);
    hint.writeUInt32LE(2);
    writeSync(fd, hint, 0, 4, bs.readUInt16LE(0x30) * bs.readUInt16LE(0x0b) + 492);
  } finally {
    closeSync(fd);
  }
}
