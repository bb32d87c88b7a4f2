/**
 * Path resolution inside a guest, the way the guest kernel resolves paths
 * under a chroot at the guest's root: symbolic links are followed within the
 * guest (an absolute target starts again at the guest's "/", never the
 * host's), ".." at the root stays at the root, and at most 40 symbolic links
 * are followed in one resolution (Linux's MAXSYMLINKS), so a loop ends in
 * ELOOP instead of hanging.
 *
 * The guest may be several filesystems mounted on each other (the mount
 * map): when the walk reaches a directory that is a mount point, it goes on
 * at the root of the filesystem mounted there. The walk keeps the chain of
 * directories it came through, so ".." after a followed symlink or across a
 * mount point goes to the parent of where the walk really is, as the
 * kernel's physical ".." does; drivers never need to answer "..".
 */
import type { FileStat, Filesystem } from '../filesystems/filesystem.ts';
import { GuestPathError } from '../errors.ts';

export const MAX_SYMLINKS = 40;
export const PATH_MAX = 4096;
export const NAME_MAX = 255;

export interface ResolveOptions {
  /** Follow a symbolic link in the last component (stat) or not (lstat, readlink). */
  followFinal: boolean;
}

/** A filesystem as the walk sees it: its driver and the guest device it lives on (named in errors). */
export interface MountedFilesystem {
  fs: Filesystem;
  device: string;
}

/** Where the walk finds filesystems: the one at "/", and whichever is mounted at a given canonical path. */
export interface MountTable {
  root: MountedFilesystem;
  /** The filesystem mounted at `path` (canonical, "/"-separated, from the guest root), if any. */
  mountedAt(path: string): Promise<MountedFilesystem | undefined> | MountedFilesystem | undefined;
}

export interface ResolvedPath {
  ino: number;
  stat: FileStat;
  /** The path it resolved to, from the guest's root, with every symlink followed (but a final one kept when not following). */
  canonicalPath: string;
  /** The filesystem the result is on. */
  fs: Filesystem;
  device: string;
}

interface Step {
  ino: number;
  name: string;
  stat: FileStat;
  mount: MountedFilesystem;
}

/** Resolve in one filesystem (its root is the guest's root). */
export async function resolvePath(fs: Filesystem, guestPath: string, device: string, options: ResolveOptions): Promise<ResolvedPath> {
  return resolveInGuest({ root: { fs, device }, mountedAt: () => undefined }, guestPath, options);
}

/** Resolve across the mount table. Errors name the device of the filesystem where the walk failed. */
export async function resolveInGuest(mounts: MountTable, guestPath: string, options: ResolveOptions): Promise<ResolvedPath> {
  let current = mounts.root;
  const fail = (code: GuestPathError['code'], detail?: string): never => {
    throw new GuestPathError(code, guestPath, current.device, detail);
  };
  if (typeof guestPath !== 'string' || guestPath === '') fail('ENOENT', 'empty path');
  if (guestPath.includes('\0')) fail('EINVAL', 'the path contains a NUL byte');
  if (Buffer.byteLength(guestPath) >= PATH_MAX) fail('ENAMETOOLONG');

  const pending = splitPath(guestPath);
  // A trailing slash asks for a directory, and follows a final symlink to get one: exactly what a trailing "." does.
  if (guestPath.endsWith('/')) pending.push('.');

  const stack: Step[] = [];
  let symlinks = 0;
  const here = () => '/' + stack.map((s) => s.name).join('/');
  const where = () => (stack.length ? stack[stack.length - 1].mount : mounts.root);

  while (pending.length > 0) {
    const name = pending.shift() as string;
    if (name === '.' || name === '') continue;
    if (name === '..') {
      stack.pop();
      continue;
    }
    if (Buffer.byteLength(name) > NAME_MAX) fail('ENAMETOOLONG', `component "${name.slice(0, 32)}..." is longer than ${NAME_MAX} bytes`);
    const top = stack[stack.length - 1];
    current = where();
    const dirIno = top ? top.ino : current.fs.rootIno;
    const ino = await current.fs.lookup(dirIno, name);
    if (ino === undefined) fail('ENOENT', `${join(here(), name)} does not exist`);
    const stat = await current.fs.getattr(ino as number);
    const isLast = pending.length === 0;
    if (stat.type === 'symlink' && (!isLast || options.followFinal)) {
      if (++symlinks > MAX_SYMLINKS) fail('ELOOP', `more than ${MAX_SYMLINKS} symbolic links followed, last at ${join(here(), name)}`);
      const target = await current.fs.readlink(ino as number);
      if (target === '') fail('ENOENT', `${join(here(), name)} is a symbolic link with an empty target`);
      if (Buffer.byteLength(target) >= PATH_MAX) fail('ENAMETOOLONG', `${join(here(), name)} points to a target longer than ${PATH_MAX} bytes`);
      // Absolute targets restart at the guest's root: the guest's "/", never the host's.
      if (target.startsWith('/')) stack.length = 0;
      pending.unshift(...splitPath(target));
      continue;
    }
    if (!isLast && stat.type !== 'directory') fail('ENOTDIR', `${join(here(), name)} is a ${describeType(stat.type)}, not a directory`);
    let step: Step = { ino: ino as number, name, stat, mount: current };
    if (stat.type === 'directory') {
      // A mount point: the walk goes on at the root of what is mounted there.
      const mounted = await mounts.mountedAt(join(here(), name));
      if (mounted) step = { ino: mounted.fs.rootIno, name, stat: await mounted.fs.getattr(mounted.fs.rootIno), mount: mounted };
    }
    stack.push(step);
  }

  const top = stack[stack.length - 1];
  if (top) return { ino: top.ino, stat: top.stat, canonicalPath: here(), fs: top.mount.fs, device: top.mount.device };
  const root = mounts.root;
  return { ino: root.fs.rootIno, stat: await root.fs.getattr(root.fs.rootIno), canonicalPath: '/', fs: root.fs, device: root.device };
}

function splitPath(path: string): string[] {
  return path.split('/').filter((c) => c !== '');
}

function join(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

export function describeType(type: FileStat['type']): string {
  switch (type) {
    case 'file': return 'regular file';
    case 'chardev': return 'character device';
    case 'blockdev': return 'block device';
    default: return type;
  }
}
