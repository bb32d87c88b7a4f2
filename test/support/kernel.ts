/**
 * The running kernel as the oracle: loop-mount a filesystem image read-only,
 * read `stat -f` and walk the mounted tree, and always clean up (umount, then
 * losetup -d) even when the test fails.
 *
 * A plain mount uses a read-only loop device, so the image cannot change. A
 * filesystem whose journal needs recovery cannot be mounted that way (the
 * kernel replays the journal even for `-o ro`, and refuses on a read-only
 * device): pass `copy: true` and the helper mounts a private sparse copy on a
 * writable loop device instead.
 */
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, constants as fsConstants, lstat, mkdir, open, readdir, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir } from './scratch.ts';
import type { FileStat, FileType, Filesystem, StatFs } from '../../packages/inspect/src/filesystems/filesystem.ts';

export interface KernelMountOptions {
  /** Byte offset of the filesystem inside the file (a partition). */
  offset?: number;
  /** Length in bytes of the filesystem (losetup --sizelimit). */
  sizelimit?: number;
  /** Mount a private copy on a writable loop device (needed when the journal needs recovery). */
  copy?: boolean;
  /** Filesystem type for mount -t (default: let the kernel probe). */
  fstype?: string;
  /** Extra mount options besides ro (or rw). */
  options?: string[];
  /**
   * Mount read-write on a writable loop device: only for building fixtures and
   * for making a journal that needs recovery, never on an image under test.
   */
  readWrite?: boolean;
}

export interface KernelMount {
  dir: string;
  loopDevice: string;
  /** The file that is loop-attached: the image itself, or its copy. */
  backing: string;
  unmount(): Promise<void>;
}

const active = new Set<KernelMount>();

// Last resort when the run dies between mount and unmount: detach lazily so no loop device stays behind.
process.once('exit', () => {
  for (const m of active) {
    spawnSync('umount', ['-l', m.dir]);
    spawnSync('losetup', ['-d', m.loopDevice]);
  }
});

async function run(file: string, args: string[]): Promise<string> {
  const r = await execa(file, args, { reject: false });
  if (r.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} failed (exit ${r.exitCode}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

let loopSupport: Promise<string | undefined> | undefined;

/** Undefined when loop mounts work here, else why not (tests print it and skip or fall back). */
export function loopMountUnavailable(): Promise<string | undefined> {
  loopSupport ??= (async () => {
    if (process.getuid?.() !== 0) return 'not running as root';
    const r = await execa('losetup', ['--find'], { reject: false });
    if (r.exitCode !== 0) return `no free loop device (${r.stderr.trim() || 'losetup --find failed'})`;
    return undefined;
  })();
  return loopSupport;
}

export async function mountImage(image: string, options: KernelMountOptions = {}): Promise<KernelMount> {
  let backing = image;
  if (options.copy) {
    backing = join(scratchDir('kernel-copy'), 'image');
    await copySparse(image, backing);
  }
  const losetupArgs = ['--find', '--show'];
  if (!options.copy && !options.readWrite) losetupArgs.push('--read-only');
  if (options.offset) losetupArgs.push('--offset', String(options.offset));
  if (options.sizelimit) losetupArgs.push('--sizelimit', String(options.sizelimit));
  losetupArgs.push(backing);
  const loopDevice = (await run('losetup', losetupArgs)).trim();
  const dir = scratchDir('kernel-mount');
  await mkdir(dir, { recursive: true });
  const mountArgs = ['-o', [options.readWrite ? 'rw' : 'ro', ...(options.options ?? [])].join(',')];
  if (options.fstype) mountArgs.push('-t', options.fstype);
  mountArgs.push(loopDevice, dir);
  try {
    await run('mount', mountArgs);
  } catch (err) {
    await execa('losetup', ['-d', loopDevice], { reject: false });
    if (options.copy) await rm(backing, { force: true });
    throw err;
  }
  let done = false;
  const mount: KernelMount = {
    dir,
    loopDevice,
    backing,
    async unmount() {
      if (done) return;
      done = true;
      active.delete(mount);
      for (let attempt = 0; ; attempt++) {
        const r = await execa('umount', [dir], { reject: false });
        if (r.exitCode === 0 || attempt >= 20) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      await execa('losetup', ['-d', loopDevice], { reject: false });
      if (options.copy) await rm(backing, { force: true });
    },
  };
  active.add(mount);
  return mount;
}

/** Mount, run `fn` on the mount, and always unmount. */
export async function withKernelMount<T>(image: string, options: KernelMountOptions, fn: (m: KernelMount) => Promise<T>): Promise<T> {
  const m = await mountImage(image, options);
  try {
    return await fn(m);
  } finally {
    await m.unmount();
  }
}

/** Unmount everything this helper mounted (for after/afterEach hooks). */
export async function unmountAll(): Promise<void> {
  for (const m of [...active]) await m.unmount();
}

/** Copy keeping holes (images are mostly sparse). */
export async function copySparse(from: string, to: string): Promise<void> {
  const r = await execa('cp', ['--sparse=always', '--', from, to], { reject: false });
  if (r.exitCode !== 0) await copyFile(from, to, fsConstants.COPYFILE_EXCL);
}

/** `stat -f` of a mounted directory, as the StatFs fields. */
export async function kernelStatfs(dir: string): Promise<Omit<StatFs, 'exact' | 'reason'>> {
  const out = await run('stat', ['-f', '-c', '%s %b %f %a %c %d %l', dir]);
  const [bsize, blocks, bfree, bavail, files, ffree, namelen] = out.trim().split(/\s+/).map(Number);
  return { bsize, blocks, bfree, bavail, files, ffree, namelen };
}

/** One node of a tree walk, the same shape for the kernel's view and a driver's. */
export interface TreeNode {
  /** Path from the filesystem root, "/" separated, starting with "/". */
  path: string;
  type: FileType;
  /** Full st_mode. */
  mode: number;
  size: number;
  uid: number;
  gid: number;
  nlink: number;
  /** 512-byte blocks (st_blocks). */
  blocks: number;
  mtimeSec: number;
  target?: string;
  sha256?: string;
  /** With `times`: atime, mtime, ctime and birth time as nanoseconds since the epoch (decimal strings); birth time only where the kernel reports one. */
  atimeNs?: string;
  mtimeNs?: string;
  ctimeNs?: string;
  btimeNs?: string;
  /** With `devices`: "major:minor" of character and block devices. */
  rdev?: string;
}

function typeOfMode(mode: number): FileType {
  switch (mode & 0o170000) {
    case 0o100000: return 'file';
    case 0o040000: return 'directory';
    case 0o120000: return 'symlink';
    case 0o020000: return 'chardev';
    case 0o060000: return 'blockdev';
    case 0o010000: return 'fifo';
    case 0o140000: return 'socket';
    default: return 'unknown';
  }
}

const EMPTY_SHA256 = createHash('sha256').digest('hex');

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

export interface WalkOptions {
  /** Paths (relative, e.g. "/lost+found") not to descend into or report. */
  exclude?: string[];
  /** Skip hashing files larger than this (their size is still compared). */
  maxHashBytes?: number;
  /** Also compare all four timestamps to the nanosecond (the birth time only when `birthTime` is set too). */
  times?: boolean;
  /** With `times`: the filesystem keeps a birth time (statx btime) to compare. */
  birthTime?: boolean;
  /** Also compare device numbers of character and block devices. */
  devices?: boolean;
}

/** A timestamp as nanoseconds since the epoch, in decimal. */
function nsOf(t: { sec: number; nsec: number }): string {
  return String(BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec));
}

/** Walk a mounted tree: every entry with its type, mode, size, owner, link target and content hash; sorted by path. */
export async function walkMounted(root: string, options: WalkOptions = {}): Promise<TreeNode[]> {
  const out: TreeNode[] = [];
  const exclude = new Set(options.exclude ?? []);
  const visit = async (rel: string) => {
    const abs = rel === '/' ? root : join(root, rel);
    const st = await lstat(abs, { bigint: true });
    const node: TreeNode = {
      path: rel,
      type: typeOfMode(Number(st.mode)),
      mode: Number(st.mode),
      size: Number(st.size),
      uid: Number(st.uid),
      gid: Number(st.gid),
      nlink: Number(st.nlink),
      blocks: Number(st.blocks),
      // st_mtime is the floor of the time (tv_sec of a timespec whose tv_nsec is never negative), also before 1970.
      mtimeSec: Number((st.mtimeNs - (((st.mtimeNs % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n)) / 1_000_000_000n),
    };
    if (options.times) {
      node.atimeNs = String(st.atimeNs);
      node.mtimeNs = String(st.mtimeNs);
      node.ctimeNs = String(st.ctimeNs);
      if (options.birthTime) node.btimeNs = String(st.birthtimeNs);
    }
    if (options.devices && (node.type === 'chardev' || node.type === 'blockdev')) node.rdev = `${Number(st.rdev) >> 8 & 0xfff}:${(Number(st.rdev) & 0xff) | ((Number(st.rdev) >> 12) & 0xfff00)}`;
    if (node.type === 'symlink') node.target = await readlink(abs);
    // An empty file's bytes are known from its size: directories of thousands of them are walked without opening each.
    if (node.type === 'file' && node.size <= (options.maxHashBytes ?? Infinity)) node.sha256 = node.size === 0 ? EMPTY_SHA256 : await hashFile(abs);
    out.push(node);
    if (node.type === 'directory') {
      for (const name of await readdir(abs)) {
        const child = rel === '/' ? `/${name}` : `${rel}/${name}`;
        if (!exclude.has(child)) await visit(child);
      }
    }
  };
  await visit('/');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A driver's stat as a tree node (no symlink target or hash yet). */
export function treeNodeOf(path: string, st: FileStat): TreeNode {
  return { path, type: st.type, mode: st.mode, size: st.size, uid: st.uid, gid: st.gid, nlink: st.nlink, blocks: st.blocks, mtimeSec: st.mtime.sec };
}

/** The same walk through a Filesystem driver (inode level), for comparison with walkMounted. */
export async function walkDriver(fs: Filesystem, options: WalkOptions = {}): Promise<TreeNode[]> {
  const out: TreeNode[] = [];
  const exclude = new Set(options.exclude ?? []);
  const chunk = 8 * 1024 * 1024;
  const visit = async (rel: string, ino: number) => {
    const st = await fs.getattr(ino);
    const node = treeNodeOf(rel, st);
    if (options.times) {
      node.atimeNs = nsOf(st.atime);
      node.mtimeNs = nsOf(st.mtime);
      node.ctimeNs = nsOf(st.ctime);
      if (options.birthTime && st.crtime) node.btimeNs = nsOf(st.crtime);
    }
    if (options.devices && st.rdev) node.rdev = `${st.rdev.major}:${st.rdev.minor}`;
    if (st.type === 'symlink') node.target = await fs.readlink(ino);
    if (st.type === 'file' && st.size <= (options.maxHashBytes ?? Infinity)) {
      const h = createHash('sha256');
      for (let off = 0; off < st.size; off += chunk) h.update(await fs.read(ino, off, Math.min(chunk, st.size - off)));
      node.sha256 = h.digest('hex');
    }
    out.push(node);
    if (st.type === 'directory') {
      for (const e of await fs.readdir(ino)) {
        const child = rel === '/' ? `/${e.name}` : `${rel}/${e.name}`;
        if (!exclude.has(child)) await visit(child, e.ino);
      }
    }
  };
  await visit('/', fs.rootIno);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
