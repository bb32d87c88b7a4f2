/**
 * The same tree walk over an ntfs-3g mount and over the driver: every entry
 * with its inode number, type, mode, size, st_blocks, links, owner, the
 * three times to the nanosecond, device numbers, link target and content
 * hash. ntfs-3g prefixes absolute link targets with its mount point; the
 * driver roots them at the volume, so the mount point is cut off (and taken
 * off st_size) before comparing.
 */
import { createHash } from 'node:crypto';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileType, Filesystem } from '../../../src/filesystems/filesystem.ts';

export interface NtfsNode {
  path: string;
  ino: number;
  type: FileType;
  mode: number;
  size: number;
  blocks: number;
  nlink: number;
  uid: number;
  gid: number;
  atime: string;
  mtime: string;
  ctime: string;
  rdev?: string;
  target?: string;
  sha256?: string;
}

function typeOf(mode: number): FileType {
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

function ns(sec: number | bigint, nsec: number | bigint): string {
  return `${sec}.${String(nsec).padStart(9, '0')}`;
}

async function hashPath(path: string): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (!bytesRead) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

const sorted = (a: NtfsNode[]) => a.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));

export async function walkNtfs3g(root: string): Promise<NtfsNode[]> {
  const out: NtfsNode[] = [];
  const visit = async (rel: string) => {
    const abs = rel === '/' ? root : join(root, rel);
    const st = await lstat(abs, { bigint: true });
    const mode = Number(st.mode);
    const node: NtfsNode = {
      path: rel,
      ino: Number(st.ino),
      type: typeOf(mode),
      mode,
      size: Number(st.size),
      blocks: Number(st.blocks),
      nlink: Number(st.nlink),
      uid: Number(st.uid),
      gid: Number(st.gid),
      atime: ns(st.atimeNs / 1_000_000_000n, st.atimeNs % 1_000_000_000n),
      mtime: ns(st.mtimeNs / 1_000_000_000n, st.mtimeNs % 1_000_000_000n),
      ctime: ns(st.ctimeNs / 1_000_000_000n, st.ctimeNs % 1_000_000_000n),
    };
    // BigInt division truncates toward zero; stat's nanoseconds of a time before 1970 are positive.
    for (const k of ['atime', 'mtime', 'ctime'] as const) {
      const v = k === 'atime' ? st.atimeNs : k === 'mtime' ? st.mtimeNs : st.ctimeNs;
      if (v < 0n) {
        const sec = v / 1_000_000_000n - (v % 1_000_000_000n === 0n ? 0n : 1n);
        node[k] = ns(sec, v - sec * 1_000_000_000n);
      }
    }
    if (node.type === 'chardev' || node.type === 'blockdev') {
      const r = st.rdev;
      node.rdev = `${((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn)}:${(r & 0xffn) | ((r >> 12n) & ~0xffn)}`;
    }
    if (node.type === 'symlink') {
      let t = await readlink(abs);
      if (t.startsWith(`${root}/`)) {
        t = t.slice(root.length);
        node.size -= root.length;
      }
      node.target = t;
    }
    if (node.type === 'file') node.sha256 = await hashPath(abs);
    out.push(node);
    if (node.type === 'directory') for (const name of await readdir(abs)) await visit(rel === '/' ? `/${name}` : `${rel}/${name}`);
  };
  await visit('/');
  return sorted(out);
}

export async function walkNtfsDriver(fs: Filesystem): Promise<NtfsNode[]> {
  const out: NtfsNode[] = [];
  const chunk = 4 * 1024 * 1024;
  const visit = async (rel: string, ino: number) => {
    const st = await fs.getattr(ino);
    // stat(2) shows a time before 1970 as negative seconds and positive nanoseconds, as the driver keeps it.
    const node: NtfsNode = {
      path: rel,
      ino,
      type: st.type,
      mode: st.mode,
      size: st.size,
      blocks: st.blocks,
      nlink: st.nlink,
      uid: st.uid,
      gid: st.gid,
      atime: ns(st.atime.sec, st.atime.nsec),
      mtime: ns(st.mtime.sec, st.mtime.nsec),
      ctime: ns(st.ctime.sec, st.ctime.nsec),
    };
    if (st.rdev) node.rdev = `${st.rdev.major}:${st.rdev.minor}`;
    if (st.type === 'symlink') node.target = await fs.readlink(ino);
    if (st.type === 'file') {
      const h = createHash('sha256');
      for (let off = 0; off < st.size; off += chunk) h.update(await fs.read(ino, off, Math.min(chunk, st.size - off)));
      node.sha256 = h.digest('hex');
    }
    out.push(node);
    if (st.type === 'directory') for (const e of await fs.readdir(ino)) await visit(rel === '/' ? `/${e.name}` : `${rel}/${e.name}`, e.ino);
  };
  await visit('/', fs.rootIno);
  return sorted(out);
}
