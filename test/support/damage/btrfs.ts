/**
 * btrfs damage. Debian ships no btrfs-corrupt-block, so its kind of edits are
 * made here: structures located with `btrfs inspect-internal dump-super` /
 * `dump-tree` and `btrfs-map-logical` (both DUP copies of each metadata node),
 * fields rewritten and the crc32c put right again (so the damage reaches past
 * the checksum), or left wrong (the kernel then reads the other copy, or
 * refuses). Truncations at the superblock, the system and metadata chunks'
 * copies and the data chunk; bit flips in the superblock, its system chunk
 * array and tree nodes. The kernel (read-only mount of a copy) is the oracle.
 */
import { join } from 'node:path';
import { crc32cStandard } from '../../../packages/inspect/src/filesystems/crc32c.ts';
import { bitflips, flipBits, haveTools, putLe, readAt, tool, truncations, writeAt, type DamageCase, type ReaderFactory } from './damage.ts';
import { populateThroughKernel } from './tree.ts';

const SIZE = 128 << 20;
const SB = 0x10000;
/** Superblock fields (offset, width), as in the on-disk format's btrfs_super_block. */
const SUPER = {
  magic: [0x40, 8], generation: [0x48, 8], root: [0x50, 8], chunk_root: [0x58, 8], log_root: [0x60, 8],
  total_bytes: [0x70, 8], bytes_used: [0x78, 8], num_devices: [0x88, 8], sectorsize: [0x90, 4], nodesize: [0x94, 4],
  sys_chunk_array_size: [0xa0, 4], incompat_flags: [0xbc, 8], csum_type: [0xc4, 2], root_level: [0xc6, 1], chunk_root_level: [0xc7, 1],
} as const;
/** Tree block header fields (btrfs_header). */
const HEADER = { bytenr: [0x30, 8], generation: [0x50, 8], owner: [0x58, 8], nritems: [0x60, 4], level: [0x64, 1] } as const;
const ITEM0_OFFSET = 0x65 + 17;

/** Put the crc32c of a superblock (4 KiB) or tree block (nodesize) at `at` right again. */
function fixCsum(image: string, at: number, length: number): void {
  const csum = Buffer.alloc(4);
  csum.writeUInt32LE(crc32cStandard(readAt(image, at, length).subarray(0x20)));
  writeAt(image, at, csum);
}

export const btrfsCorpus: ReaderFactory = async (dir) => {
  const missing = await haveTools(['mkfs.btrfs', 'btrfs', 'btrfs-map-logical']);
  if (missing) return { unavailable: missing };
  const r = 'btrfs';
  const base = join(dir, 'btrfs-base.img');
  await tool('truncate', ['-s', String(SIZE), base]);
  await tool('mkfs.btrfs', ['-q', '-f', '-L', 'damaged', base]);
  await populateThroughKernel(base);
  const sup = await tool('btrfs', ['inspect-internal', 'dump-super', base]);
  const sfield = (name: string) => Number(new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(sup)?.[1] ?? NaN);
  const nodesize = sfield('nodesize');
  const rootTree = sfield('root');
  const chunkRoot = sfield('chunk_root');
  const rootsDump = await tool('btrfs', ['inspect-internal', 'dump-tree', '-t', 'root', base]);
  const rootOf = (tree: string) => Number(new RegExp(`\\(${tree} ROOT_ITEM 0\\)[^\\n]*\\n[^\\n]*bytenr (\\d+)`).exec(rootsDump)?.[1] ?? NaN);
  const fsTree = rootOf('FS_TREE');
  const extentTree = rootOf('EXTENT_TREE');
  const csumTree = rootOf('CSUM_TREE');
  const mirrors = async (logical: number): Promise<number[]> =>
    [...(await tool('btrfs-map-logical', ['-l', String(logical), base])).matchAll(/physical (\d+)/g)].map((m) => Number(m[1]));
  const nodes = { root: await mirrors(rootTree), chunk: await mirrors(chunkRoot), fs: await mirrors(fsTree), extent: await mirrors(extentTree), csum: await mirrors(csumTree) };
  const chunks = await tool('btrfs', ['inspect-internal', 'dump-tree', '-t', 'chunk', base]);
  const dataChunk = Number(/type DATA[^\n]*\n[^\n]*\n\s*stripe 0 devid 1 offset (\d+)/.exec(chunks)?.[1] ?? NaN);
  const metaStripes = /type METADATA[^\n]*\n[^\n]*\n\s*stripe 0 devid 1 offset (\d+)\n\s*stripe 1 devid 1 offset (\d+)/.exec(chunks);

  const superEdit = (name: keyof typeof SUPER, value: number | bigint, fix = true): DamageCase => ({
    reader: r,
    technique: 'edit',
    name: `${r}/super-${name}-${value}${fix ? '' : '-bad-csum'}`,
    async damage(image) {
      const [off, width] = SUPER[name];
      putLe(image, SB + off, width, value);
      if (fix) fixCsum(image, SB, 4096);
    },
  });
  const nodeEdit = (tree: keyof typeof nodes, what: string, edit: (image: string, at: number) => void, copies: 'one' | 'both', fix = true, ls = true): DamageCase => ({
    reader: r,
    technique: 'edit',
    name: `${r}/${tree}-tree-${what}-${copies === 'one' ? 'first-copy' : 'both-copies'}${fix ? '' : '-bad-csum'}`,
    ls,
    async damage(image) {
      for (const at of copies === 'one' ? nodes[tree].slice(0, 1) : nodes[tree]) {
        edit(image, at);
        if (fix) fixCsum(image, at, nodesize);
      }
    },
  });
  const header = (name: keyof typeof HEADER, value: number | bigint) => (image: string, at: number) => putLe(image, at + HEADER[name][0], HEADER[name][1], value);
  const flip = (seed: number) => (image: string, at: number) => flipBits(image, at + 0x65, nodesize - 0x65, seed, 16);
  const cases: DamageCase[] = [
    superEdit('total_bytes', 0),
    superEdit('total_bytes', 1n << 50n),
    superEdit('bytes_used', 1n << 50n),
    superEdit('num_devices', 2),
    superEdit('sectorsize', 3),
    superEdit('nodesize', 1000),
    superEdit('root', 0),
    superEdit('root', 1n << 40n),
    superEdit('chunk_root', 4096),
    superEdit('log_root', rootTree),
    superEdit('root_level', 9),
    superEdit('chunk_root_level', 3),
    superEdit('csum_type', 7),
    superEdit('incompat_flags', 1n << 40n),
    superEdit('sys_chunk_array_size', 0),
    superEdit('sys_chunk_array_size', 5000),
    superEdit('generation', 1000),
    superEdit('magic', 0, false),
    superEdit('bytes_used', 12345, false),
    nodeEdit('root', 'nritems-huge', header('nritems', 100000), 'both'),
    nodeEdit('root', 'level-5', header('level', 5), 'both'),
    nodeEdit('root', 'bytenr-wrong', header('bytenr', 4096), 'both'),
    nodeEdit('fs', 'nritems-huge', header('nritems', 100000), 'both'),
    nodeEdit('fs', 'nritems-0', header('nritems', 0), 'both'),
    nodeEdit('fs', 'owner-wrong', header('owner', 2), 'both'),
    nodeEdit('fs', 'generation-future', header('generation', 99999), 'both'),
    nodeEdit('fs', 'item0-offset-beyond', (image, at) => putLe(image, at + ITEM0_OFFSET, 4, 0x7fffff00), 'both'),
    nodeEdit('fs', 'item0-size-huge', (image, at) => putLe(image, at + ITEM0_OFFSET + 4, 4, 0x7fffff00), 'both'),
    nodeEdit('fs', 'flips', flip(1), 'both'),
    nodeEdit('fs', 'flips', flip(2), 'one', false),
    nodeEdit('fs', 'flips', flip(3), 'both', false),
    nodeEdit('extent', 'nritems-huge', header('nritems', 100000), 'both', true, false),
    nodeEdit('csum', 'flips', flip(4), 'both', true, false),
    nodeEdit('chunk', 'nritems-huge', header('nritems', 100000), 'both', true, false),
    nodeEdit('chunk', 'flips', flip(5), 'both', true, false),
    nodeEdit('chunk', 'flips', flip(6), 'one', false, false),
    ...truncations(r, [
      ['before-superblock', SB],
      ['in-superblock', SB + 2048],
      ['after-superblock', SB + 4096],
      ['at-chunk-root', nodes.chunk[0]],
      ['at-chunk-root-copy', nodes.chunk[1]],
      ['at-data-chunk', dataChunk],
      ['at-metadata-chunk', Number(metaStripes?.[1])],
      ['at-root-tree', nodes.root[0]],
      ['at-fs-tree', nodes.fs[0]],
      ['at-metadata-copy', Number(metaStripes?.[2])],
      ['at-root-tree-copy', nodes.root[1]],
      ['at-fs-tree-copy', nodes.fs[1]],
      ['last-node', SIZE - nodesize],
    ], SIZE),
    ...bitflips(r, [
      ['superblock', SB, 4096],
      ['sys-chunk-array', SB + 0x32b, 200],
    ], [1, 2]),
  ];
  return { reader: r, base, cases };
};
