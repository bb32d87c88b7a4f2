/**
 * ext fixtures for the driver's tests, built with the real tools: a source tree
 * (files of awkward sizes, a sparse file over 4 GiB, long and short symlinks,
 * hard links, odd modes and owners, special files), `mkfs.ext2/3/4 -d`, then,
 * where the kernel can loop-mount, a read-write mount that adds what only the
 * kernel makes: hashed (htree) directories, unwritten extents (fallocate),
 * punched holes.
 */
import { chmod, chown, lchown, link, mkdir, open, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { sh } from '../../../../../test/support/run.ts';
import { mountImage } from '../../../../../test/support/kernel.ts';

/** Deterministic bytes (xorshift), so content hashes are stable and not all zeros. */
export function pseudoRandom(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export const SPARSE_BIG_SIZE = 5 * 1024 ** 3 + 12345;
/** Offsets of the data written into the sparse big file. */
export const SPARSE_BIG_DATA = [0, 2 ** 32 - 7, 2 ** 32 + 4096 * 3, SPARSE_BIG_SIZE - 100];

export interface SourceTreeOptions {
  blockSize: number;
  /** Put a sparse file over 4 GiB in the tree. */
  bigSparse?: boolean;
}

/** The tree `mkfs -d` copies in. */
export async function makeSourceTree(options: SourceTreeOptions): Promise<string> {
  const root = scratchDir('ext-src');
  const sizes = [0, 1, 59, 60, 61, 100, 511, 4095, 4096, 4097, options.blockSize * 12, options.blockSize * 12 + 1, 300_000, 1_500_000];
  await mkdir(join(root, 'files'));
  for (const [i, size] of sizes.entries()) await writeFile(join(root, 'files', `f${size}`), pseudoRandom(size, i + 1));
  // Big enough to need a double-indirect block with 1 KiB blocks (12 + 256 + ...).
  await writeFile(join(root, 'files', 'double-indirect'), pseudoRandom(1024 * 300 + 17, 99));

  await mkdir(join(root, 'deep', 'a', 'b', 'c', 'd'), { recursive: true });
  await writeFile(join(root, 'deep', 'a', 'b', 'c', 'd', 'leaf.txt'), 'leaf\n');
  await writeFile(join(root, 'deep', 'name with spaces & ünïcödé'), 'names\n');

  await mkdir(join(root, 'links'));
  await symlink('../files/f100', join(root, 'links', 'short'));
  await symlink('x'.repeat(59), join(root, 'links', 'len59'));
  await symlink('y'.repeat(60), join(root, 'links', 'len60'));
  await symlink('/' + 'long/'.repeat(60) + 'target', join(root, 'links', 'long300'));
  await symlink('z'.repeat(Math.min(1000, options.blockSize - 1)), join(root, 'links', 'long-max'));
  await symlink('/etc/passwd', join(root, 'links', 'absolute'));
  await symlink('dangling-nowhere', join(root, 'links', 'dangling'));
  await link(join(root, 'files', 'f4096'), join(root, 'links', 'hardlink-f4096'));

  await mkdir(join(root, 'modes'));
  const modes: [string, number][] = [['setuid', 0o4755], ['sticky-dir', 0o1777], ['private', 0o600], ['none', 0o000], ['exec', 0o711]];
  for (const [name, mode] of modes) {
    const p = join(root, 'modes', name);
    if (name.endsWith('-dir')) await mkdir(p);
    else await writeFile(p, name);
    await chmod(p, mode);
  }
  await writeFile(join(root, 'modes', 'owned'), 'owned\n');
  await chown(join(root, 'modes', 'owned'), 1234, 5678);
  await symlink('owned', join(root, 'modes', 'owned-link'));
  await lchown(join(root, 'modes', 'owned-link'), 4321, 8765);
  await utimes(join(root, 'modes', 'owned'), 1_000_000_000, 1_234_567_890);

  await mkdir(join(root, 'special'));
  await sh('mkfifo', [join(root, 'special', 'fifo')]);
  await sh('mknod', [join(root, 'special', 'null'), 'c', '1', '3']);
  await sh('mknod', [join(root, 'special', 'loopish'), 'b', '7', '200']);

  if (options.bigSparse) {
    const p = join(root, 'files', 'sparse-5g');
    await writeFile(p, '');
    await truncate(p, SPARSE_BIG_SIZE);
    const fh = await open(p, 'r+');
    try {
      for (const [i, off] of SPARSE_BIG_DATA.entries()) await fh.write(pseudoRandom(100, 1000 + i), 0, 100, off);
    } finally {
      await fh.close();
    }
  }
  return root;
}

export interface Variant {
  name: string;
  mkfs: 'mkfs.ext2' | 'mkfs.ext3' | 'mkfs.ext4';
  args: string[];
  size: string;
  blockSize: number;
  bigSparse?: boolean;
  /** ext4 features the kernel adds through a rw mount (fallocate needs extents). */
  extents?: boolean;
  /** The image should end up with at least one htree directory. */
  expectHtree?: boolean;
  /** This kernel cannot mount it (64 KiB blocks on 4 KiB pages): compare with dumpe2fs/debugfs instead. */
  notMountable?: string;
}

export const VARIANTS: Variant[] = [
  { name: 'ext2, 1 KiB blocks, 128-byte inodes', mkfs: 'mkfs.ext2', args: ['-b', '1024', '-I', '128'], size: '64M', blockSize: 1024, bigSparse: true, expectHtree: true },
  { name: 'ext2, 4 KiB blocks', mkfs: 'mkfs.ext2', args: ['-b', '4096'], size: '64M', blockSize: 4096, expectHtree: true },
  { name: 'ext3, 1 KiB blocks', mkfs: 'mkfs.ext3', args: ['-b', '1024'], size: '64M', blockSize: 1024, bigSparse: true, expectHtree: true },
  { name: 'ext3, 4 KiB blocks', mkfs: 'mkfs.ext3', args: ['-b', '4096', '-I', '256'], size: '128M', blockSize: 4096, expectHtree: true },
  { name: 'ext4 defaults (64bit, metadata_csum, flex_bg)', mkfs: 'mkfs.ext4', args: [], size: '128M', blockSize: 4096, bigSparse: true, extents: true, expectHtree: true },
  { name: 'ext4 without 64bit, crc16 group descriptors (uninit_bg), 1 KiB blocks', mkfs: 'mkfs.ext4', args: ['-b', '1024', '-O', '^64bit,^metadata_csum,uninit_bg'], size: '64M', blockSize: 1024, extents: true, expectHtree: true },
  { name: 'ext4 meta_bg, 1 KiB blocks, 64bit', mkfs: 'mkfs.ext4', args: ['-b', '1024', '-O', 'meta_bg,^resize_inode'], size: '512M', blockSize: 1024, extents: true },
  { name: 'ext4 meta_bg, 1 KiB blocks, 32-bit descriptors, 80 groups', mkfs: 'mkfs.ext4', args: ['-b', '1024', '-g', '1024', '-O', 'meta_bg,^resize_inode,^64bit'], size: '80M', blockSize: 1024, extents: true },
  { name: 'ext4 meta_bg, 4 KiB blocks, 32-bit descriptors, 140 groups', mkfs: 'mkfs.ext4', args: ['-b', '4096', '-g', '2048', '-N', '20000', '-O', 'meta_bg,^resize_inode,^64bit'], size: '1100M', blockSize: 4096, extents: true },
  { name: 'ext4 bigalloc, 64 KiB clusters', mkfs: 'mkfs.ext4', args: ['-O', 'bigalloc', '-C', '65536'], size: '256M', blockSize: 4096, extents: true, bigSparse: true },
  { name: 'ext4 bigalloc, 1 KiB blocks, 16 KiB clusters', mkfs: 'mkfs.ext4', args: ['-b', '1024', '-O', 'bigalloc', '-C', '16384'], size: '128M', blockSize: 1024, extents: true },
  { name: 'ext4 sparse_super2', mkfs: 'mkfs.ext4', args: ['-O', 'sparse_super2'], size: '256M', blockSize: 4096, extents: true },
  { name: 'ext4 inline_data', mkfs: 'mkfs.ext4', args: ['-O', 'inline_data', '-I', '256'], size: '64M', blockSize: 4096, extents: true, expectHtree: true },
  { name: 'ext4 1024-byte inodes', mkfs: 'mkfs.ext4', args: ['-I', '1024'], size: '64M', blockSize: 4096, extents: true },
  { name: 'ext4, 2 KiB blocks', mkfs: 'mkfs.ext4', args: ['-b', '2048'], size: '64M', blockSize: 2048, extents: true, expectHtree: true },
  { name: 'ext4, 64 KiB blocks (dumpe2fs/debugfs oracle)', mkfs: 'mkfs.ext4', args: ['-b', '65536'], size: '256M', blockSize: 65536, notMountable: 'this kernel mounts blocks up to the 4 KiB page size only' },
  { name: 'ext4 128-byte inodes, 1 KiB blocks', mkfs: 'mkfs.ext4', args: ['-I', '128', '-b', '1024'], size: '64M', blockSize: 1024, extents: true, expectHtree: true },
];

export const HTREE_DIR = '/hashed';
export const HTREE_FILES = 1200;

/**
 * Make the image: mkfs -d from a fresh source tree, then (when `mounted`)
 * a read-write loop mount adds an htree directory, fallocated (unwritten)
 * extents and a punched hole, and is unmounted again.
 */
export async function buildImage(variant: Variant, options: { mounted: boolean }): Promise<string> {
  const src = await makeSourceTree({ blockSize: variant.blockSize, bigSparse: variant.bigSparse });
  const image = join(scratchDir('ext-img'), 'fs.img');
  await sh('truncate', ['-s', variant.size, image]);
  await sh(variant.mkfs, ['-q', '-F', ...variant.args, '-L', 'fixture', '-d', src, image]);
  if (!options.mounted) return image;
  const m = await mountImage(image, { readWrite: true });
  try {
    const dir = join(m.dir, HTREE_DIR);
    await mkdir(dir);
    for (let i = 0; i < HTREE_FILES; i++) {
      await writeFile(join(dir, `entry-number-${i.toString().padStart(5, '0')}-with-a-long-name`), i % 7 === 0 ? pseudoRandom(i, i) : '');
    }
    if (variant.extents) {
      await sh('fallocate', ['-l', '1M', join(m.dir, 'files', 'unwritten')]);
      const partly = join(m.dir, 'files', 'partly-unwritten');
      await writeFile(partly, pseudoRandom(8192, 7));
      await sh('fallocate', ['-o', '8192', '-l', '65536', '--keep-size', partly]);
      await sh('fallocate', ['-o', '8192', '-l', '65536', partly]);
      const punched = join(m.dir, 'files', 'punched');
      await writeFile(punched, pseudoRandom(1 << 20, 8));
      await sh('fallocate', ['--punch-hole', '-o', '131072', '-l', '262144', punched]);
    }
  } finally {
    await m.unmount();
  }
  return image;
}

export { mountImage };
