/**
 * Image-format damage: a populated ext4 disk converted by qemu-img to qcow2,
 * vmdk (monolithicSparse) and vhdx, then header and table edits (qcow2's
 * cluster_bits, size, L1/refcount offsets, feature bits, L1/L2 entries past
 * the end; vmdk's grain size, grain directory, GT entries, descriptor;
 * vhdx's headers and region tables), truncations at every structure boundary
 * the headers name, and bit flips in headers and tables. No kernel oracle for
 * a container: each answer or clear error is reported as such.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { bitflips, haveTools, putLe, readAt, tool, truncations, writeAt, type DamageCase, type ReaderCorpus, type ReaderFactory } from './damage.ts';
import { populateThroughKernel } from './tree.ts';

/** The populated ext4 disk the three formats are converted from: made once per run (beside the readers' directories). */
async function rawDisk(dir: string): Promise<string> {
  const raw = join(dirname(dir), 'formats-ext4.raw');
  if (existsSync(raw)) return raw;
  await tool('truncate', ['-s', '16M', raw]);
  await tool('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'inner', raw]);
  await populateThroughKernel(raw);
  return raw;
}

const edit = (r: string, what: string, change: (image: string) => void, ls = false): DamageCase => ({ reader: r, technique: 'edit', name: `${r}/${what}`, ls, damage: async (image) => change(image) });

function qcow2Cases(base: string): DamageCase[] {
  const r = 'qcow2';
  const h = readAt(base, 0, 112);
  const size = statSync(base).size;
  const clusterBits = h.readUInt32BE(20);
  const cluster = 2 ** clusterBits;
  const l1 = Number(h.readBigUInt64BE(40));
  const l1Size = h.readUInt32BE(36);
  const refcountTable = Number(h.readBigUInt64BE(48));
  const L1 = readAt(base, l1, l1Size * 8);
  const l2 = Number(L1.readBigUInt64BE(0) & 0x00fffffffffffe00n);
  const L2 = readAt(base, l2, cluster);
  let dataEntry = 0;
  while (dataEntry < cluster / 8 && L2.readBigUInt64BE(dataEntry * 8) === 0n) dataEntry++;
  const data = Number(L2.readBigUInt64BE(Math.min(dataEntry, cluster / 8 - 1) * 8) & 0x00fffffffffffe00n);
  const refblock = Number(readAt(base, refcountTable, 8).readBigUInt64BE(0));
  const be = (image: string, at: number, width: 4 | 8, value: bigint) => {
    const b = Buffer.alloc(width);
    if (width === 8) b.writeBigUInt64BE(value);
    else b.writeUInt32BE(Number(value));
    writeAt(image, at, b);
  };
  return [
    edit(r, 'cluster-bits-8', (i) => be(i, 20, 4, 8n)),
    edit(r, 'cluster-bits-31', (i) => be(i, 20, 4, 31n)),
    edit(r, 'size-huge', (i) => be(i, 24, 8, 1n << 62n)),
    edit(r, 'l1-size-huge', (i) => be(i, 36, 4, 0x7fffffffn)),
    edit(r, 'l1-size-0', (i) => be(i, 36, 4, 0n)),
    edit(r, 'l1-offset-past-end', (i) => be(i, 40, 8, 1n << 40n)),
    edit(r, 'l1-offset-unaligned', (i) => be(i, 40, 8, BigInt(l1 + 8))),
    edit(r, 'refcount-table-0', (i) => be(i, 48, 8, 0n)),
    edit(r, 'incompatible-unknown', (i) => be(i, 72, 8, 1n << 40n)),
    edit(r, 'crypt-method-aes', (i) => be(i, 32, 4, 1n)),
    edit(r, 'backing-file-huge', (i) => { be(i, 8, 8, 0x200n); be(i, 16, 4, 0xfffffn); }),
    edit(r, 'header-length-huge', (i) => be(i, 100, 4, 0xfffffn)),
    edit(r, 'l1-entry-past-end', (i) => be(i, l1, 8, (1n << 63n) | (1n << 45n)), true),
    edit(r, 'l1-entry-is-header', (i) => be(i, l1, 8, 1n << 63n), true),
    edit(r, 'l1-entry-unaligned', (i) => be(i, l1, 8, (1n << 63n) | BigInt(l2 + 512)), true),
    edit(r, 'l2-entry-past-end', (i) => be(i, l2 + dataEntry * 8, 8, (1n << 63n) | (1n << 45n)), true),
    edit(r, 'l2-entry-compressed-garbage', (i) => be(i, l2 + dataEntry * 8, 8, (1n << 62n) | 0x3fffffffffffffffn), true),
    edit(r, 'l2-entry-reserved-bits', (i) => be(i, l2 + dataEntry * 8, 8, L2.readBigUInt64BE(dataEntry * 8) | 0x1ffn), true),
    ...truncations(r, [
      ['in-header', 48],
      ['after-header-v2', 72],
      ['after-header', 104],
      ['at-cluster-1', cluster],
      ['at-l1', l1],
      ['at-refcount-table', refcountTable],
      ['at-refcount-block', refblock],
      ['at-l2', l2],
      ['at-first-data', data],
      ['in-first-data', data + cluster / 2],
      ['half', Math.floor(size / 2 / cluster) * cluster],
      ['last-cluster', size - cluster],
    ], size),
    ...bitflips(r, [
      ['header', 0, 104],
      ['l1-table', l1, l1Size * 8],
      ['l2-table', l2, cluster],
      ['refcount-table', refcountTable, 64],
    ], [1, 2]),
  ];
}

function vmdkCases(base: string): DamageCase[] {
  const r = 'vmdk';
  const h = readAt(base, 0, 512);
  const size = statSync(base).size;
  const s = (at: number) => Number(h.readBigUInt64LE(at)) * 512;
  const grain = s(20);
  const descriptor = s(28);
  const rgd = s(48);
  const gd = s(56);
  const overhead = s(64);
  const gt = readAt(base, gd, 4).readUInt32LE(0) * 512;
  const GT = readAt(base, gt, 512 * 4);
  let g = 0;
  while (g < 512 && GT.readUInt32LE(g * 4) === 0) g++;
  const firstGrain = GT.readUInt32LE(Math.min(g, 511) * 4) * 512;
  return [
    edit(r, 'grain-size-0', (i) => putLe(i, 20, 8, 0)),
    edit(r, 'grain-size-huge', (i) => putLe(i, 20, 8, 1n << 40n)),
    edit(r, 'gtes-per-gt-0', (i) => putLe(i, 44, 4, 0)),
    edit(r, 'gtes-per-gt-huge', (i) => putLe(i, 44, 4, 0x7fffffff)),
    edit(r, 'capacity-huge', (i) => putLe(i, 12, 8, 1n << 60n)),
    edit(r, 'gd-offset-past-end', (i) => putLe(i, 56, 8, 1n << 40n)),
    edit(r, 'gd-offset-0', (i) => putLe(i, 56, 8, 0)),
    edit(r, 'descriptor-size-huge', (i) => putLe(i, 36, 8, 1n << 30n)),
    edit(r, 'descriptor-create-type', (i) => {
      const d = readAt(i, descriptor, 1024).toString('latin1').replace(/createType="[^"]*"/, 'createType="noSuchType"');
      writeAt(i, descriptor, Buffer.from(d, 'latin1'));
    }),
    edit(r, 'descriptor-extent-size-huge', (i) => {
      const d = readAt(i, descriptor, 1024).toString('latin1').replace(/RW \d+ SPARSE/, 'RW 99999999999999 SPARSE');
      writeAt(i, descriptor, Buffer.from(d, 'latin1'));
    }),
    edit(r, 'gd-entry-past-end', (i) => putLe(i, gd, 4, 0xfffffff0), true),
    edit(r, 'gt-entry-past-end', (i) => putLe(i, gt + g * 4, 4, 0xfffffff0), true),
    edit(r, 'gt-entry-is-header', (i) => putLe(i, gt + g * 4, 4, 1), true),
    ...truncations(r, [
      ['in-header', 64],
      ['after-header', 512],
      ['at-descriptor-end', descriptor + s(36)],
      ['at-redundant-gd', rgd],
      ['at-gd', gd],
      ['at-gt', gt],
      ['at-overhead-end', overhead],
      ['at-first-grain', firstGrain],
      ['in-first-grain', firstGrain + grain / 2],
      ['half', Math.floor(size / 2 / 512) * 512],
      ['last-grain', size - grain],
    ], size),
    ...bitflips(r, [
      ['header', 0, 80],
      ['grain-directory', gd, 512],
      ['grain-table', gt, 2048],
      ['descriptor', descriptor, 512],
    ], [1, 2]),
  ];
}

function vhdxCases(base: string): DamageCase[] {
  const r = 'vhdx';
  const size = statSync(base).size;
  const K = 1024;
  const regions = readAt(base, 192 * K, 64 * K);
  const count = regions.readUInt32LE(8);
  const region: Array<[string, number, number]> = [];
  for (let n = 0; n < Math.min(count, 8); n++) {
    const e = 16 + n * 32;
    const guid = regions.subarray(e, e + 16).toString('hex');
    // BAT 2DC27766-..., metadata 8B7CA206-... (stored little-endian: first four bytes reversed).
    region.push([guid.startsWith('6677c22d') ? 'bat' : guid.startsWith('06a27c8b') ? 'metadata' : `region${n}`, Number(regions.readBigUInt64LE(e + 16)), regions.readUInt32LE(e + 24)]);
  }
  const bat = region.find(([n]) => n === 'bat');
  const meta = region.find(([n]) => n === 'metadata');
  const batEntries = bat ? readAt(base, bat[1], Math.min(bat[2], 4096)) : Buffer.alloc(0);
  let b = 0;
  while (b * 8 + 8 <= batEntries.length && (batEntries.readBigUInt64LE(b * 8) & 7n) !== 6n) b++;
  const firstBlock = b * 8 + 8 <= batEntries.length ? Number((batEntries.readBigUInt64LE(b * 8) >> 20n) << 20n) : -1;
  return [
    edit(r, 'file-identifier-0', (i) => writeAt(i, 0, Buffer.alloc(8))),
    edit(r, 'both-headers-signature-0', (i) => { writeAt(i, 64 * K, Buffer.alloc(4)); writeAt(i, 128 * K, Buffer.alloc(4)); }),
    edit(r, 'both-region-tables-signature-0', (i) => { writeAt(i, 192 * K, Buffer.alloc(4)); writeAt(i, 256 * K, Buffer.alloc(4)); }),
    ...(bat ? [edit(r, 'bat-entry-past-end', (i) => putLe(i, bat[1] + b * 8, 8, (1n << 40n << 20n) | 6n), true), edit(r, 'bat-entry-state-7', (i) => putLe(i, bat[1] + b * 8, 1, (batEntries[b * 8] & ~7) | 7), true)] : []),
    ...truncations(r, [
      ['in-file-identifier', 4 * K],
      ['at-header-1', 64 * K],
      ['at-header-2', 128 * K],
      ['at-region-table-1', 192 * K],
      ['at-region-table-2', 256 * K],
      ['at-log', 1024 * K],
      ...region.map(([n, at]): [string, number] => [`at-${n}`, at]),
      ...region.map(([n, at, len]): [string, number] => [`in-${n}`, at + Math.floor(len / 2)]),
      ['at-first-block', firstBlock],
      ['half', Math.floor(size / 2 / 4096) * 4096],
    ], size),
    ...bitflips(r, [
      ['header-1', 64 * K, 4096],
      ['both-headers', 64 * K, 68 * K],
      ['region-table-1', 192 * K, 4096],
      ['both-region-tables', 192 * K, 68 * K],
      ...(meta ? [['metadata', meta[1], Math.min(meta[2], 64 * K)] as [string, number, number]] : []),
      ...(bat ? [['bat', bat[1], Math.min(bat[2], 4096)] as [string, number, number]] : []),
    ], [1, 2]),
  ];
}

function formatFactory(format: 'qcow2' | 'vmdk' | 'vhdx', cases: (base: string) => DamageCase[], options: string[] = []): ReaderFactory {
  return async (dir): Promise<ReaderCorpus | { unavailable: string }> => {
    const missing = await haveTools(['qemu-img', 'mke2fs']);
    if (missing) return { unavailable: missing };
    const base = join(dir, `${format}-base.${format}`);
    await tool('qemu-img', ['convert', '-O', format, ...options, await rawDisk(dir), base]);
    return { reader: format, base, format, cases: cases(base), noKernel: 'an image container (the kernel mounts no qcow2, vmdk or vhdx)' };
  };
}

export const qcow2Corpus = formatFactory('qcow2', qcow2Cases);
export const vmdkCorpus = formatFactory('vmdk', vmdkCases, ['-o', 'subformat=monolithicSparse']);
export const vhdxCorpus = formatFactory('vhdx', vhdxCases, ['-o', 'subformat=dynamic']);
