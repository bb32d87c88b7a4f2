/**
 * XFS fixtures built with the real tools. A source tree on the host (files
 * of awkward sizes, symlinks short and long, hard links, odd modes, owners
 * and timestamps to the nanosecond, special files) is copied with `cp -a`
 * into a read-write loop mount of a fresh `mkfs.xfs` image (v5: the kernel
 * mounts it), which then gets what only the kernel makes: directories in
 * every form up to tens of thousands of entries, a sparse file over 4 GiB,
 * files fragmented by interleaved appends and by holes (a bmap btree two
 * levels deep), unwritten extents, reflinked copies, extended attributes in
 * every attribute-fork form and POSIX ACLs. Version 4 filesystems, which this
 * kernel does not mount, are filled by mkfs.xfs itself from a prototype file.
 */
import { chmod, chown, lchown, link, lstat, mkdir, open, readdir, readlink, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { sh } from '../../../../../test/support/run.ts';
import { mountImage } from '../../../../../test/support/kernel.ts';
import assert from 'node:assert/strict';
import { execa } from 'execa';

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

/** mkfs.xfs accepts filesystems under 300 MiB only for its own test suite; say we are one. */
export const SMALL_FS_ENV = { TEST_DIR: '1', TEST_DEV: '1', QA_CHECK_FS: '1' };

export const SPARSE_BIG_SIZE = 5 * 1024 ** 3 + 12345;
export const SPARSE_BIG_DATA = [0, 2 ** 32 - 7, 2 ** 32 + 4096 * 3, SPARSE_BIG_SIZE - 100];

/** Timestamps the fixtures set, to the nanosecond (pre-1970, 32-bit end, after 2038 for bigtime). */
export const ODD_TIMES: [string, string][] = [
  ['old', '@-1234567890.123456789'],
  ['epoch', '@0.000000001'],
  ['y2038', '@2147483647.999999999'],
  ['future', '@4102444800.5'],
];

export interface SourceTreeOptions {
  /** Timestamps beyond 2038 only where bigtime stores them. */
  bigtime: boolean;
}

/** The tree `cp -a` (or the prototype file) copies in. */
export async function makeSourceTree(options: SourceTreeOptions): Promise<string> {
  const root = scratchDir('xfs-src');
  await mkdir(join(root, 'files'));
  const sizes = [0, 1, 59, 60, 61, 100, 511, 512, 4095, 4096, 4097, 65536, 65537, 300_000, 1_500_000];
  for (const [i, size] of sizes.entries()) await writeFile(join(root, 'files', `f${size}`), pseudoRandom(size, i + 1));

  await mkdir(join(root, 'deep', 'a', 'b', 'c', 'd', 'e', 'f'), { recursive: true });
  await writeFile(join(root, 'deep', 'a', 'b', 'c', 'd', 'e', 'f', 'leaf.txt'), 'leaf\n');
  await writeFile(join(root, 'deep', 'name with spaces & ünïcödé ✓'), 'names\n');
  await writeFile(join(root, 'deep', 'x'.repeat(255)), 'longest name\n');

  await mkdir(join(root, 'links'));
  await symlink('../files/f100', join(root, 'links', 'short'));
  await symlink('/etc/passwd', join(root, 'links', 'absolute'));
  await symlink('dangling-nowhere', join(root, 'links', 'dangling'));
  await symlink('s'.repeat(300), join(root, 'links', 'len300'));
  await symlink('/' + 'long/'.repeat(120) + 'target', join(root, 'links', 'len606'));
  await symlink('m'.repeat(1023), join(root, 'links', 'len1023'));
  await link(join(root, 'files', 'f4096'), join(root, 'links', 'hardlink-f4096'));
  await link(join(root, 'files', 'f4096'), join(root, 'deep', 'hardlink-too'));

  await mkdir(join(root, 'modes'));
  const modes: [string, number][] = [['setuid', 0o4755], ['setgid', 0o2755], ['sticky-dir', 0o1777], ['private', 0o600], ['none', 0o000], ['exec', 0o711]];
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
  await writeFile(join(root, 'modes', 'big-ids'), 'ids\n');
  await chown(join(root, 'modes', 'big-ids'), 4_000_000_000, 3_000_000_000);

  await mkdir(join(root, 'times'));
  for (const [name, when] of ODD_TIMES) {
    if (name === 'future' && !options.bigtime) continue;
    const p = join(root, 'times', name);
    await writeFile(p, name);
    await sh('touch', ['-h', '-d', when, p]);
  }
  await utimes(join(root, 'modes', 'owned'), 1_000_000_000, 1_234_567_890);

  await mkdir(join(root, 'special'));
  await sh('mkfifo', [join(root, 'special', 'fifo')]);
  await sh('mknod', [join(root, 'special', 'null'), 'c', '1', '3']);
  await sh('mknod', [join(root, 'special', 'loopish'), 'b', '7', '200']);
  await sh('mknod', [join(root, 'special', 'bignums'), 'c', '300', '70000']);
  await sh('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', join(root, 'special', 'socket')]);

  // A short-form directory holding every file type.
  await mkdir(join(root, 'small'));
  await writeFile(join(root, 'small', 'a'), 'a');
  await mkdir(join(root, 'small', 'b'));
  await symlink('a', join(root, 'small', 'c'));
  await sh('mkfifo', [join(root, 'small', 'd')]);
  return root;
}

/** What a variant gets beyond the copied tree (v5, through a read-write kernel mount). */
export interface KernelExtras {
  /** Entries of the biggest (node-form) directory. */
  bigDirEntries: number;
  /** Put a sparse file over 4 GiB in the tree. */
  bigSparse?: boolean;
  /** Blocks written every other block: one extent each (a bmap btree). */
  holeExtents?: number;
  /** Appends interleaved between two files (fsync'd, small allocation size): extents that alternate. */
  interleavedAppends?: number;
  /** Make reflinked copies (the filesystem has reflink). */
  reflink?: boolean;
  /** Directories spread over the AGs (big inode numbers on a huge filesystem). */
  spreadDirs?: number;
}

export interface Variant {
  name: string;
  mkfsArgs: string[];
  size: string;
  /** mkfs.xfs and mount can make it but the kernel here cannot mount it: compare with xfs_db instead. */
  v4?: boolean;
  bigtime: boolean;
  extras: KernelExtras;
  /** Lets mkfs make filesystems under 300 MiB. */
  small?: boolean;
}

export const BIG_DIR = '/dirs/node-big';

/** Fill a mounted filesystem with what only the kernel makes. */
export async function addKernelExtras(mnt: string, extras: KernelExtras, bigtime: boolean): Promise<void> {
  const dirs = join(mnt, 'dirs');
  await mkdir(dirs);
  const forms: [string, number, number][] = [
    ['block', 40, 12],
    ['leaf', 300, 24],
    ['node-big', extras.bigDirEntries, 30],
  ];
  for (const [name, count, nameLength] of forms) {
    const d = join(dirs, name);
    await mkdir(d);
    for (let i = 0; i < count; i++) {
      const entry = join(d, `${String(i).padStart(7, '0')}-${'n'.repeat(Math.max(1, nameLength - 8))}`);
      if (i % 97 === 0) await mkdir(entry);
      else await writeFile(entry, i % 13 === 0 ? pseudoRandom(i % 5000, i) : '');
    }
  }
  // A directory that grew and shrank: stale leaf entries and free data space.
  const shrunk = join(dirs, 'shrunk');
  await mkdir(shrunk);
  for (let i = 0; i < 900; i++) await writeFile(join(shrunk, `entry-${i}`), '');
  for (let i = 0; i < 900; i += 3) await unlink(join(shrunk, `entry-${i}`));

  const frag = join(mnt, 'frag');
  await mkdir(frag);
  if (extras.bigSparse) {
    const p = join(frag, 'sparse-5g');
    await writeFile(p, '');
    await truncate(p, SPARSE_BIG_SIZE);
    const fh = await open(p, 'r+');
    try {
      for (const [i, off] of SPARSE_BIG_DATA.entries()) await fh.write(pseudoRandom(100, 1000 + i), 0, 100, off);
    } finally {
      await fh.close();
    }
  }
  if (extras.holeExtents) {
    const cmds: string[] = [];
    for (let i = 0; i < extras.holeExtents; i++) cmds.push('-c', `pwrite -q -S ${i % 251} ${i * 8192} 4096`);
    await sh('xfs_io', ['-f', ...cmds, join(frag, 'holes')]);
  }
  if (extras.interleavedAppends) {
    const a = await open(join(frag, 'interleaved-a'), 'a');
    const b = await open(join(frag, 'interleaved-b'), 'a');
    try {
      for (let i = 0; i < extras.interleavedAppends; i++) {
        await a.write(pseudoRandom(4096, 2 * i));
        await a.sync();
        await b.write(pseudoRandom(4096, 2 * i + 1));
        await b.sync();
      }
    } finally {
      await a.close();
      await b.close();
    }
  }
  // Unwritten extents: preallocated space, partly written.
  await sh('xfs_io', ['-f', '-c', 'falloc 0 1m', '-c', 'pwrite -q 65536 4096', join(frag, 'unwritten')]);
  await sh('xfs_io', ['-f', '-c', 'pwrite -q 0 8192', '-c', 'falloc -k 8192 65536', join(frag, 'prealloc-past-eof')]);
  await sh('xfs_io', ['-f', '-c', 'pwrite -q -S 7 0 1m', '-c', 'fpunch 131072 262144', join(frag, 'punched')]);
  if (extras.reflink) {
    await writeFile(join(frag, 'original'), pseudoRandom(3 * 65536, 77));
    await sh('cp', ['--reflink=always', join(frag, 'original'), join(frag, 'reflinked')]);
    await sh('xfs_io', ['-c', 'pwrite -q -S 9 65536 4096', join(frag, 'reflinked')]);
  }

  const xattrs = join(mnt, 'xattrs');
  await mkdir(xattrs);
  const sf = join(xattrs, 'shortform');
  await writeFile(sf, 'sf');
  await sh('setfattr', ['-n', 'user.small', '-v', 'value', sf]);
  await sh('setfattr', ['-n', 'trusted.root-only', '-v', '0x00ff', sf]);
  await sh('setfattr', ['-n', 'security.label', '-v', 'system_u:object_r:etc_t:s0', sf]);
  // A value over 255 bytes has no short form: one leaf block holds these, whatever the inode and block size.
  const leaf = join(xattrs, 'leaf');
  await writeFile(leaf, 'leaf');
  await sh('setfattr', ['-n', 'user.leaf-long', '-v', 'v'.repeat(400), leaf]);
  await sh('setfattr', ['-n', 'user.leaf-a', '-v', 'a', leaf]);
  await sh('setfattr', ['-n', 'security.leaf-b', '-v', 'bb', leaf]);
  const node = join(xattrs, 'node');
  await writeFile(node, 'node');
  const setMany: string[] = [];
  for (let i = 0; i < 400; i++) setMany.push(`# file: ${node}`, `user.node-attribute-${String(i).padStart(4, '0')}="${'w'.repeat(60 + (i % 50))}"`, '');
  await sh('setfattr', ['--restore=-'], { input: setMany.join('\n') + '\n' });
  const remote = join(xattrs, 'remote');
  await writeFile(remote, 'remote');
  // Values too long for one command-line argument go through setfattr's restore format on stdin.
  const big = [`# file: ${remote}`, `user.big=0x${pseudoRandom(20_000, 5).toString('hex')}`, `user.biggest=0x${pseudoRandom(65_536, 6).toString('hex')}`, ''];
  await sh('setfattr', ['--restore=-'], { input: big.join('\n') + '\n' });
  await sh('setfattr', ['-n', 'user.empty', remote]);
  const acl = join(xattrs, 'acl');
  await writeFile(acl, 'acl');
  await sh('setfacl', ['-m', 'u:1234:rwx,g:99:r-x,m::rwx', acl]);
  const aclDir = join(xattrs, 'acl-dir');
  await mkdir(aclDir);
  await sh('setfacl', ['-d', '-m', 'u:1234:rwx,g::r-x', aclDir]);
  await writeFile(join(aclDir, 'inherits'), 'x');

  if (extras.spreadDirs) {
    const spread = join(mnt, 'spread');
    await mkdir(spread);
    for (let i = 0; i < extras.spreadDirs; i++) {
      await mkdir(join(spread, `d${i}`));
      await writeFile(join(spread, `d${i}`, 'f'), `file ${i}`);
    }
  }
  if (bigtime) {
    const future = join(mnt, 'times-kernel');
    await mkdir(future);
    await writeFile(join(future, 'f'), 'x');
    await sh('touch', ['-h', '-d', '@16000000000.987654321', join(future, 'f')]);
  }
}

/** mkfs.xfs an image of `size` (sparse) with `args`. */
export async function mkfsXfs(image: string, size: string, args: string[], small = false): Promise<void> {
  await sh('truncate', ['-s', size, image]);
  await sh('mkfs.xfs', ['-q', '-f', '-L', 'fixture', ...args, image], small ? { env: SMALL_FS_ENV } : {});
}

/** A v5 image filled through a read-write kernel mount. */
export async function buildKernelImage(variant: Variant): Promise<string> {
  const image = join(scratchDir('xfs-img'), 'fs.img');
  await mkfsXfs(image, variant.size, variant.mkfsArgs, variant.small);
  const src = await makeSourceTree({ bigtime: variant.bigtime });
  const m = await mountImage(image, { readWrite: true, options: ['allocsize=4096'] });
  try {
    await sh('cp', ['-a', '--sparse=always', `${src}/.`, m.dir]);
    await addKernelExtras(m.dir, variant.extras, variant.bigtime);
  } finally {
    await m.unmount();
  }
  return image;
}

/** The mode string of a prototype-file line: type, setuid, setgid, then octal permissions. */
function protoMode(type: string, mode: number): string {
  return `${type}${mode & 0o4000 ? 'u' : '-'}${mode & 0o2000 ? 'g' : '-'}${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

/**
 * A prototype file describing `root` (mkfs.xfs -p): regular files (their
 * bytes from the host), directories, symlinks, devices and fifos. Sockets
 * and second names of hard links have no prototype form and are left out,
 * and so are names with white space and sticky directories; `extraDirs` adds directories of empty
 * files of the given sizes. `maxSymlink` leaves out longer symlinks:
 * mkfs.xfs 6.1 writes remote symlink blocks of v5 filesystems without their
 * header (xfs_repair -n then reports them), which is not a fixture but
 * damage. Returns the file and the paths (from `root`) it describes.
 */
export async function protofileOf(root: string, extraDirs: Record<string, number> = {}, maxSymlink = Infinity): Promise<{ proto: string; included: Set<string> }> {
  const lines = ['/dev/null', '0 0', 'd--755 0 0'];
  const seen = new Set<bigint>();
  const included = new Set<string>();
  const walk = async (dir: string, depth: number) => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const p = join(dir, name);
      const st = await lstat(p, { bigint: true });
      const mode = Number(st.mode);
      const ids = `${st.uid} ${st.gid}`;
      const indent = ' '.repeat(depth);
      if (/\s/.test(name)) continue; // the prototype format splits on whitespace
      if (mode & 0o1000) continue; // and has no sticky bit
      const rel = p.slice(root.length);
      switch (mode & 0o170000) {
        case 0o100000:
          if (seen.has(st.ino)) continue;
          seen.add(st.ino);
          lines.push(`${indent}${name} ${protoMode('-', mode)} ${ids} ${p}`);
          included.add(rel);
          break;
        case 0o040000:
          lines.push(`${indent}${name} ${protoMode('d', mode)} ${ids}`);
          included.add(rel);
          await walk(p, depth + 1);
          lines.push(`${indent}$`);
          break;
        case 0o120000: {
          const target = await readlink(p);
          if (target.length > maxSymlink) break;
          lines.push(`${indent}${name} ${protoMode('l', mode)} ${ids} ${target}`);
          included.add(rel);
          break;
        }
        case 0o020000:
        case 0o060000: {
          const rdev = Number(st.rdev);
          const major = ((rdev >> 8) & 0xfff);
          const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
          lines.push(`${indent}${name} ${protoMode((mode & 0o170000) === 0o020000 ? 'c' : 'b', mode)} ${ids} ${major} ${minor}`);
          included.add(rel);
          break;
        }
        case 0o010000:
          lines.push(`${indent}${name} ${protoMode('p', mode)} ${ids}`);
          included.add(rel);
          break;
        default:
          break;
      }
    }
  };
  await walk(root, 1);
  const dir = scratchDir('xfs-proto');
  for (const [name, count] of Object.entries(extraDirs)) {
    lines.push(` ${name} d--755 0 0`);
    const empty = join(dir, 'empty-file');
    await writeFile(empty, '');
    for (let i = 0; i < count; i++) lines.push(`  ${String(i).padStart(7, '0')}-entry-with-a-longish-name ---644 0 0 ${empty}`);
    lines.push(' $');
  }
  lines.push('$');
  const proto = join(dir, 'proto.txt');
  await writeFile(proto, lines.join('\n') + '\n');
  return { proto, included };
}

/** Hash only the data regions of a sparse image (and keep size and mtime), so a 4 TiB image is guarded in seconds. */
async function sparseDigest(path: string): Promise<string> {
  // Every non-zero 4 KiB block with its offset: the same bytes give the same digest however the host lays out holes.
  const r = await execa('python3', ['-c', `
import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
st = os.fstat(fd)
h = hashlib.sha256()
zero = bytes(4096)
pos = 0
while pos < st.st_size:
    try:
        pos = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    end = os.lseek(fd, pos, os.SEEK_HOLE)
    pos -= pos % 4096
    while pos < end:
        b = os.pread(fd, min(1 << 22, end - pos + (-(end - pos)) % 4096), pos)
        if not b:
            break
        for i in range(0, len(b), 4096):
            blk = b[i:i + 4096]
            if blk != zero[:len(blk)]:
                h.update(str(pos + i).encode())
                h.update(blk)
        pos += len(b)
print(h.hexdigest(), st.st_size, st.st_mtime_ns)
`, path]);
  return r.stdout.trim();
}

export async function guardSparseImage<T>(image: string, fn: () => Promise<T>): Promise<T> {
  const before = await sparseDigest(image);
  const result = await fn();
  assert.equal(await sparseDigest(image), before, `${image} changed`);
  return result;
}

