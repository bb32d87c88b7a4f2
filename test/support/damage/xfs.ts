/**
 * XFS damage, v5 (CRCs) and v4 (none): xfs_db -x edits of the superblock,
 * AGF, AGI and inodes (`write -d` keeps the CRC right so the damage gets past
 * the verifiers), xfs_db blocktrash of directory and inode blocks, truncations
 * at AG 0's headers, btree roots, inode chunk, log and the later AGs, and bit
 * flips in headers and directory blocks. v5 bases are filled through the
 * kernel; this kernel no longer mounts v4, so the v4 base is filled by
 * mkfs.xfs -p from a prototype file, and the engine finds that the kernel
 * refuses the base (then no image of that reader is compared with it).
 */
import { mkdirSync, readdirSync, lstatSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bitflips, haveTools, tool, truncations, type DamageCase, type ReaderFactory } from './damage.ts';
import { populateThroughKernel, writeTree } from './tree.ts';

const SIZE = 64 << 20;
/** mkfs.xfs refuses filesystems under 300 MB unless it believes it is in the fstests harness. */
const SMALL_FS_ENV = { TEST_DIR: '1', TEST_DEV: '1', QA_CHECK_FS: '1' };

/** A mkfs.xfs prototype file describing the directory tree at `dir`. */
function prototype(dir: string): string {
  const lines = ['/dev/null', '0 0', 'd--755 0 0'];
  const walk = (d: string, depth: number) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      const pad = ' '.repeat(depth);
      if (st.isDirectory()) {
        lines.push(`${pad}${name} d--755 0 0`);
        walk(p, depth + 1);
        lines.push(`${pad}$`);
      } else if (st.isSymbolicLink()) lines.push(`${pad}${name} l--777 0 0 ${readlinkSync(p)}`);
      else lines.push(`${pad}${name} ---644 0 0 ${p}`);
    }
  };
  walk(dir, 1);
  lines.push('$');
  return `${lines.join('\n')}\n`;
}

function xfsFactory(version: 4 | 5): ReaderFactory {
  return async (dir) => {
    const missing = await haveTools(['mkfs.xfs', 'xfs_db']);
    if (missing) return { unavailable: missing };
    const r = `xfs-v${version}`;
    const base = join(dir, `${r}-base.img`);
    await tool('truncate', ['-s', String(SIZE), base]);
    if (version === 5) {
      await tool('mkfs.xfs', ['-q', '-f', '-L', 'damaged', base], { env: SMALL_FS_ENV });
      await populateThroughKernel(base);
    } else {
      const stage = join(dir, 'xfs-v4-tree');
      mkdirSync(stage, { recursive: true });
      writeTree(stage, false);
      writeFileSync(join(dir, 'xfs-v4.proto'), prototype(stage));
      await tool('mkfs.xfs', ['-q', '-f', '-m', 'crc=0', '-L', 'damaged', '-p', join(dir, 'xfs-v4.proto'), base], { env: SMALL_FS_ENV });
    }
    const db = (cmds: string[]) => tool('xfs_db', [...cmds.flatMap((c) => ['-c', c]), base]);
    const field = (out: string, name: string) => Number(new RegExp(`^${name.replace('.', '\\.')} = (\\d+)`, 'm').exec(out)?.[1] ?? NaN);
    const sb = await db(['sb 0', 'p']);
    const bs = field(sb, 'blocksize');
    const sect = field(sb, 'sectsize');
    const agblocks = field(sb, 'agblocks');
    const isize = field(sb, 'inodesize');
    const rootino = field(sb, 'rootino');
    const logstart = field(sb, 'logstart');
    const agf = await db(['agf 0', 'p']);
    const agi = await db(['agi 0', 'p']);
    const bnoroot = field(agf, 'bnoroot');
    const inoroot = field(agi, 'root');
    const blockOf = async (path: string) => Number(/startblock (\d+)/.exec(await db([`path ${path}`, 'bmap']))?.[1] ?? NaN);
    const many = await blockOf('/many');
    const messages = await blockOf('/var/log/messages');
    const w = version === 5 ? 'write -d' : 'write';
    const edit = (what: string, cmds: string[], ls = false): DamageCase => ({
      reader: r,
      technique: 'edit',
      name: `${r}/xfs_db-${what}`,
      ls,
      damage: async (image) => void (await tool('xfs_db', ['-x', ...cmds.flatMap((c) => ['-c', c]), image])),
    });
    const trash = (type: string, seed: number, n: number): DamageCase => ({
      reader: r,
      technique: 'edit',
      name: `${r}/blocktrash-${type}-s${seed}-n${n}`,
      ls: true,
      damage: async (image) => void (await tool('xfs_db', ['-x', '-c', 'blockget', '-c', `blocktrash -s ${seed} -n ${n} -t ${type}`, image])),
    });
    const sbw = (name: string, value: string | number) => edit(`sb-${name}-${value}`, ['sb 0', `${w} ${name} ${value}`]);
    const cases: DamageCase[] = [
      sbw('magicnum', 0),
      sbw('blocklog', 20),
      sbw('blocksize', 0),
      sbw('agblocks', 1),
      sbw('agcount', 0),
      sbw('agcount', 1000),
      sbw('dblocks', 1),
      sbw('dblocks', '0xffffffffffff'),
      sbw('fdblocks', 0),
      sbw('fdblocks', '0xffffffffffff'),
      sbw('icount', 999999999),
      sbw('ifree', 999999999),
      sbw('rootino', 0),
      sbw('rootino', 99999999),
      sbw('sectsize', 0),
      sbw('inodesize', 3),
      sbw('inopblog', 0),
      sbw('logblocks', 0),
      sbw('logstart', 0),
      sbw('versionnum', 0),
      ...(version === 5 ? [sbw('features_incompat', '0x80000000'), sbw('features_ro_compat', '0x80000000'), edit('sb-crc-wrong', ['sb 0', 'write -c crc 0'])] : []),
      edit('agf0-freeblks-huge', ['agf 0', `${w} freeblks 999999`]),
      edit('agf1-length-0', ['agf 1', `${w} length 0`]),
      edit('agf0-bnoroot-0', ['agf 0', `${w} bnoroot 0`]),
      edit('agf0-magic-0', ['agf 0', `${w} magicnum 0`]),
      edit('agi0-count-huge', ['agi 0', `${w} count 99999999`]),
      edit('agi0-root-beyond', ['agi 0', `${w} root 99999`], true),
      edit('agi2-magic-0', ['agi 2', `${w} magicnum 0`]),
      edit('root-mode-0', [`inode ${rootino}`, `${w} core.mode 0`], true),
      edit('root-format-9', [`inode ${rootino}`, `${w} core.format 9`], true),
      edit('root-size-huge', [`inode ${rootino}`, `${w} core.size 99999999`], true),
      edit('many-nextents-0', ['path /many', `${w} core.nextents 0`], true),
      edit('many-size-0', ['path /many', `${w} core.size 0`], true),
      edit('messages-size-huge', ['path /var/log/messages', `${w} core.size 0xffffffffffffff`], true),
      edit('messages-nblocks-0', ['path /var/log/messages', `${w} core.nblocks 0`], true),
      edit('messages-magic-0', ['path /var/log/messages', `${w} core.magic 0`], true),
      trash('dir', 1, 4),
      trash('dir', 2, 16),
      trash('inode', 1, 4),
      trash('inode', 2, 16),
      trash('agf', 1, 2),
      trash('agi', 1, 2),
      trash('bnobt', 1, 4),
      trash('inobt', 1, 4),
      ...truncations(r, [
        ['in-superblock', 256],
        ['after-superblock', sect],
        ['after-agf', 2 * sect],
        ['after-agi', 3 * sect],
        ['after-ag0-headers', 4 * sect],
        ['at-bnobt-root', bnoroot * bs],
        ['at-inobt-root', inoroot * bs],
        ['at-root-inode', rootino * isize],
        ['in-inode-chunk', rootino * isize + 4 * isize],
        ['at-many-directory', many * bs],
        ['at-file-data', messages * bs],
        ['at-log', logstart * bs],
        ['at-ag1', agblocks * bs],
        ['in-ag1-headers', agblocks * bs + sect],
        ['at-last-ag', 3 * agblocks * bs],
        ['last-block', SIZE - bs],
      ], SIZE),
      ...bitflips(r, [
        ['superblock', 0, sect],
        ['superblock-geometry', 0, 128],
        ['agf0', sect, sect],
        ['agi0', 2 * sect, sect],
        ['bnobt-root', bnoroot * bs, bs],
        ['inobt-root', inoroot * bs, bs],
        ['root-inode', rootino * isize, isize],
        ['many-directory', many * bs, bs],
        ['log-head', logstart * bs, 4096],
      ], [1, 2, 3]),
    ];
    return { reader: r, base, cases };
  };
}

export const xfsV5Corpus = xfsFactory(5);
export const xfsV4Corpus = xfsFactory(4);
