/**
 * btrfs fixtures made with the real mkfs.btrfs and filled through a kernel
 * read-write loop mount (the only way to get what a guest makes: compressed
 * extents of each kind, reflinks, snapshots, nested subvolumes, preallocated
 * and sparse files, inline files, a 10,000-entry directory, xattrs).
 * Compression of one kind is chosen by remounting with compress=...; files
 * meant to be compressed by zlib or lzo are copied in from outside the
 * filesystem (a copy inside one btrfs would share the zstd extents).
 */
import { mkdir, readFile, symlink, truncate, writeFile, link } from 'node:fs/promises';
import { crc32cStandard } from '../../../src/filesystems/crc32c.ts';
import { HEADER, SB } from '../../../src/filesystems/btrfs/layout.ts';
import { join } from 'node:path';
import { sh } from '../../../../../test/support/run.ts';
import { mountImage } from '../../../../../test/support/kernel.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';

/** Where the primary superblock lives. */
export const SB_OFFSET = 0x10000;

export interface Variant {
  name: string;
  mkfs: string[];
  /** Fill through a kernel mount (else the image is made with --rootdir only). */
  fill: boolean;
  /** Also the 10,000-entry directory (slow to make and walk: one variant has it). */
  bigDir?: boolean;
  sizeMiB: number;
}

export const VARIANTS: Variant[] = [
  { name: 'defaults (DUP metadata, no-holes, free-space-tree), every kind of content', mkfs: [], fill: true, bigDir: true, sizeMiB: 512 },
  { name: '--rootdir (made by mkfs from a directory, not by the kernel)', mkfs: [], fill: false, sizeMiB: 256 },
  { name: '-m single -d single -O ^no-holes (explicit hole extents)', mkfs: ['-m', 'single', '-d', 'single', '-O', '^no-holes'], fill: true, sizeMiB: 384 },
  { name: '--csum xxhash', mkfs: ['--csum', 'xxhash'], fill: true, sizeMiB: 384 },
  { name: '--csum sha256, -m dup -d dup', mkfs: ['--csum', 'sha256', '-m', 'dup', '-d', 'dup'], fill: true, sizeMiB: 384 },
  { name: '--csum blake2, --nodesize 4096', mkfs: ['--csum', 'blake2', '--nodesize', '4096'], fill: true, sizeMiB: 384 },
];

/** Deterministic bytes that compress well (text-like), and bytes that do not. */
export function textBytes(n: number, seed: number): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'btrfs', 'guest', 'kernel', 'extent', 'subvolume', 'snapshot'];
  const parts: string[] = [];
  let len = 0;
  let x = seed >>> 0 || 1;
  while (len < n) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    const w = `${words[x % words.length]}${x % 7 === 0 ? '\n' : ' '}`;
    parts.push(w);
    len += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
}

export function noiseBytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 7;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

export const BIG_DIR = 'many';
export const BIG_DIR_ENTRIES = 10_000;

/** Files written outside the filesystem, copied in under one compression each. */
async function outsideFiles(dir: string): Promise<{ text: string; mixed: string }> {
  await mkdir(dir, { recursive: true });
  const text = join(dir, 'text.txt');
  await writeFile(text, textBytes(700_000, 11));
  const mixed = join(dir, 'mixed.bin');
  await writeFile(mixed, Buffer.concat([textBytes(200_000, 5), noiseBytes(150_000, 6), textBytes(90_001, 7)]));
  return { text, mixed };
}

export async function buildImage(v: Variant): Promise<string> {
  const dir = scratchDir('btrfs-fixture');
  await mkdir(dir, { recursive: true });
  const image = join(dir, 'btrfs.img');
  await truncate(image, 0).catch(() => undefined);
  await writeFile(image, '');
  await truncate(image, v.sizeMiB * 1024 * 1024);
  const outside = await outsideFiles(join(dir, 'outside'));
  if (!v.fill) {
    const root = join(dir, 'rootdir');
    await mkdir(join(root, 'sub/dir'), { recursive: true });
    await writeFile(join(root, 'text.txt'), textBytes(300_000, 21));
    await writeFile(join(root, 'noise.bin'), noiseBytes(200_000, 22));
    await writeFile(join(root, 'tiny'), 'inline\n');
    await writeFile(join(root, 'sub/dir/file'), textBytes(9000, 23));
    await symlink('../text.txt', join(root, 'sub/link'));
    await writeFile(join(root, 'sparse-ish'), 'x');
    await truncate(join(root, 'sparse-ish'), 3 * 1024 * 1024);
    await sh('mkfs.btrfs', ['-q', '-f', '-L', 'rootdir', '--rootdir', root, ...v.mkfs, image]);
    return image;
  }
  await sh('mkfs.btrfs', ['-q', '-f', '-L', 'guestlens-test', ...v.mkfs, image]);
  const m = await mountImage(image, { readWrite: true, options: ['compress=zstd'] });
  try {
    const r = m.dir;
    // zstd (the mount option), inline small files, an incompressible file, a sparse file, a preallocated one.
    await writeFile(join(r, 'zstd.txt'), textBytes(1_000_000, 1));
    await writeFile(join(r, 'noise.bin'), noiseBytes(600_000, 2));
    await writeFile(join(r, 'tiny'), 'hello, btrfs\n');
    await writeFile(join(r, 'tiny-compressible'), textBytes(3000, 3));
    await writeFile(join(r, 'empty'), '');
    await writeFile(join(r, 'sparse'), '');
    await sh('dd', ['if=/dev/urandom', `of=${join(r, 'sparse')}`, 'bs=4096', 'count=3', 'seek=100', 'conv=notrunc', 'status=none']);
    await truncate(join(r, 'sparse'), 5 * 1024 * 1024 + 123);
    await sh('fallocate', ['-l', '1M', join(r, 'prealloc')]);
    await sh('dd', ['if=/dev/urandom', `of=${join(r, 'prealloc')}`, 'bs=4096', 'count=2', 'seek=10', 'conv=notrunc', 'status=none']);
    await sh('dd', ['if=/dev/urandom', `of=${join(r, 'halfprealloc')}`, 'bs=4096', 'count=5', 'status=none']);
    await sh('fallocate', ['-o', '20480', '-l', '40960', join(r, 'halfprealloc')]);
    // Reflinked copies share the extents; an overwrite in the middle of one splits them.
    await sh('cp', ['--reflink=always', join(r, 'zstd.txt'), join(r, 'zstd-reflink.txt')]);
    await sh('cp', ['--reflink=always', join(r, 'noise.bin'), join(r, 'noise-reflink.bin')]);
    await sh('dd', ['if=/dev/zero', `of=${join(r, 'noise-reflink.bin')}`, 'bs=4096', 'count=3', 'seek=40', 'conv=notrunc', 'status=none']);
    // Links, special files, xattrs, odd names.
    await symlink('zstd.txt', join(r, 'link-to-zstd'));
    await symlink('/absolute/target/that/does/not/exist', join(r, 'dangling'));
    await symlink('x'.repeat(2000), join(r, 'long-link'));
    await link(join(r, 'tiny'), join(r, 'tiny-hardlink'));
    await sh('mkfifo', [join(r, 'fifo')]);
    await sh('mknod', [join(r, 'chardev'), 'c', '4', '64']);
    await sh('mknod', [join(r, 'blockdev'), 'b', '259', '1048575']);
    await sh('setfattr', ['-n', 'user.comment', '-v', 'a small value', join(r, 'tiny')]);
    await sh('setfattr', ['-n', 'user.big', '-v', `0x${noiseBytes(2000, 9).toString('hex')}`, join(r, 'tiny')]);
    await sh('setfattr', ['-n', 'trusted.x', '-v', 'y', join(r, 'noise.bin')]);
    await writeFile(join(r, Buffer.from([0x6c, 0x61, 0x74, 0x69, 0x6e, 0xe9]).toString('latin1')), 'a Latin-1 name');
    await writeFile(join(r, 'ünïcödé ✓'), 'utf-8 name');
    await mkdir(join(r, 'deep/a/b/c/d/e/f'), { recursive: true });
    await writeFile(join(r, 'deep/a/b/c/d/e/f/leaf'), 'deep');
    await sh('chown', ['1234:5678', join(r, 'deep/a')]);
    await sh('chmod', ['4755', join(r, 'deep/a/b')]);
    await sh('touch', ['-d', '1969-07-20 20:17:40.123456789 UTC', join(r, 'empty')]);
    await sh('touch', ['-h', '-d', '2038-01-19 03:14:08.999999999 UTC', join(r, 'dangling')]);
    // A 10,000-entry directory (readdir order is index order).
    await mkdir(join(r, BIG_DIR));
    for (let i = 0; i < (v.bigDir ? BIG_DIR_ENTRIES : 300); i++) await writeFile(join(r, BIG_DIR, `entry-${(i * 7919) % BIG_DIR_ENTRIES}`), i % 100 === 0 ? `content ${i}` : '');
    // zlib and lzo: copy in from outside, under a remount with that compression.
    await sh('mount', ['-o', 'remount,compress=zlib', r]);
    await sh('cp', [outside.text, join(r, 'zlib.txt')]);
    await sh('cp', [outside.mixed, join(r, 'zlib-mixed.bin')]);
    await sh('mount', ['-o', 'remount,compress=lzo', r]);
    await sh('cp', [outside.text, join(r, 'lzo.txt')]);
    await sh('cp', [outside.mixed, join(r, 'lzo-mixed.bin')]);
    await writeFile(join(r, 'lzo-tiny'), textBytes(2500, 4));
    await sh('mount', ['-o', 'remount,compress=zstd', r]);
    // Subvolumes: home with files, a read-only snapshot of it, a nested subvolume made after the snapshot, a snapshot of the top level.
    await sh('btrfs', ['-q', 'subvolume', 'create', join(r, 'home')]);
    await mkdir(join(r, 'home/user'));
    await writeFile(join(r, 'home/user/notes.txt'), textBytes(50_000, 12));
    await writeFile(join(r, 'home/user/small'), 'in home\n');
    await sh('btrfs', ['-q', 'subvolume', 'snapshot', '-r', join(r, 'home'), join(r, 'home-snap')]);
    await writeFile(join(r, 'home/user/after-snapshot'), 'only in home\n');
    await sh('btrfs', ['-q', 'subvolume', 'create', join(r, 'home/user/nested')]);
    await writeFile(join(r, 'home/user/nested/inside'), textBytes(10_000, 13));
    await mkdir(join(r, 'vols'));
    await sh('btrfs', ['-q', 'subvolume', 'create', join(r, 'vols/root')]);
    await writeFile(join(r, 'vols/root/etc-hostname'), 'fedora-like\n');
    await sh('sync', ['-f', join(r, 'zstd.txt')]);
  } finally {
    await m.unmount();
  }
  return image;
}

/** The fuzzers' image: zstd, zlib and lzo extents, inline data, a subvolume, an xattr (needs root and loop mounts). */
export async function buildFuzzImage(): Promise<Buffer> {
  const dir = scratchDir('btrfs-fuzz');
  await sh('mkdir', ['-p', dir]);
  const image = join(dir, 'small.img');
  await sh('truncate', ['-s', '120M', image]);
  await sh('mkfs.btrfs', ['-q', '-m', 'single', image]);
  const m = await mountImage(image, { readWrite: true, options: ['compress=zstd'] });
  try {
    await writeFile(join(m.dir, 'zstd.txt'), textBytes(200_000, 1));
    await writeFile(join(m.dir, 'tiny'), 'inline data\n');
    await writeFile(join(m.dir, 'noise'), noiseBytes(70_000, 2));
    await sh('mount', ['-o', 'remount,compress=zlib', m.dir]);
    await writeFile(join(m.dir, 'zlib.txt'), textBytes(150_000, 3));
    await sh('mount', ['-o', 'remount,compress=lzo', m.dir]);
    await writeFile(join(m.dir, 'lzo.txt'), textBytes(150_000, 4));
    await sh('btrfs', ['-q', 'subvolume', 'create', join(m.dir, 'sub')]);
    await writeFile(join(m.dir, 'sub/file'), textBytes(9000, 5));
    await sh('setfattr', ['-n', 'user.k', '-v', 'v', join(m.dir, 'tiny')]);
  } finally {
    await m.unmount();
  }
  return readFile(image);
}

/** Tree blocks of the image: nodesize-aligned physical blocks carrying the filesystem's fsid in their header. */
export function treeBlocks(img: Buffer, nodesize: number): number[] {
  const fsid = img.subarray(SB_OFFSET + SB.fsid, SB_OFFSET + SB.fsid + 16);
  const out: number[] = [];
  for (let p = 1024 * 1024; p + nodesize <= img.length; p += 4096) {
    if (img.readBigUInt64LE(p + HEADER.generation) === 0n) continue;
    if (img.subarray(p + HEADER.fsid, p + HEADER.fsid + 16).equals(fsid) && crc32cStandard(img.subarray(p + 32, p + nodesize)) === img.readUInt32LE(p)) out.push(p);
  }
  return out;
}
