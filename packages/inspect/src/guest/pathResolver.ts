/**
 * Path resolution inside one guest filesystem, the way the guest kernel
 * resolves paths under a chroot at that filesystem's root: symbolic links are
 * followed within the filesystem (an absolute target starts again at its
 * root, never at the host's), ".." at the root stays at the root, and at most
 * 40 symbolic links are followed in one resolution (Linux's MAXSYMLINKS), so
 * a loop ends in ELOOP instead of hanging.
 *
 * The walk keeps the chain of directories it came through, so ".." after a
 * followed symlink goes to the parent of where the link led, as the kernel's
 * physical ".." does; drivers never need to answer "..".
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

export interface ResolvedPath {
  ino: number;
  stat: FileStat;
  /** The path it resolved to, from the filesystem's root, with every symlink followed (but a final one kept when not following). */
  canonicalPath: string;
}

interface Step {
  ino: number;
  name: string;
  stat: FileStat;
}

export async function resolvePath(fs: Filesystem, guestPath: string, device: string, options: ResolveOptions): Promise<ResolvedPath> {
  const fail = (code: GuestPathError['code'], detail?: string): never => {
    throw new GuestPathError(code, guestPath, device, detail);
  };
  if (typeof guestPath !== 'string' || guestPath === '') fail('ENOENT', 'empty path');
  if (guestPath.includes('\0')) fail('EINVAL', 'the path contains a NUL byte');
  if (Buffer.byteLength(guestPath) >= PATH_MAX) fail('ENAMETOOLONG');

  const pending = splitPath(guestPath);
  // A trailing slash asks for a directory, and follows a final symlink to get one: exactly what a trailing "." does.
  if (guestPath.endsWith('/')) pending.push('.');

  let rootStat: FileStat | undefined;
  const stack: Step[] = [];
  let symlinks = 0;
  const here = () => '/' + stack.map((s) => s.name).join('/');

  while (pending.length > 0) {
    const name = pending.shift() as string;
    if (name === '.' || name === '') continue;
    if (name === '..') {
      stack.pop();
      continue;
    }
    if (Buffer.byteLength(name) > NAME_MAX) fail('ENAMETOOLONG', `component "${name.slice(0, 32)}..." is longer than ${NAME_MAX} bytes`);
    const dirIno = stack.length ? stack[stack.length - 1].ino : fs.rootIno;
    const ino = await fs.lookup(dirIno, name);
    if (ino === undefined) fail('ENOENT', `${join(here(), name)} does not exist`);
    const stat = await fs.getattr(ino as number);
    const isLast = pending.length === 0;
    if (stat.type === 'symlink' && (!isLast || options.followFinal)) {
      if (++symlinks > MAX_SYMLINKS) fail('ELOOP', `more than ${MAX_SYMLINKS} symbolic links followed, last at ${join(here(), name)}`);
      const target = await fs.readlink(ino as number);
      if (target === '') fail('ENOENT', `${join(here(), name)} is a symbolic link with an empty target`);
      if (Buffer.byteLength(target) >= PATH_MAX) fail('ENAMETOOLONG', `${join(here(), name)} points to a target longer than ${PATH_MAX} bytes`);
      // Absolute targets restart at this filesystem's root: the guest's "/", never the host's.
      if (target.startsWith('/')) stack.length = 0;
      pending.unshift(...splitPath(target));
      continue;
    }
    if (!isLast && stat.type !== 'directory') fail('ENOTDIR', `${join(here(), name)} is a ${describeType(stat.type)}, not a directory`);
    stack.push({ ino: ino as number, name, stat });
  }

  const top = stack[stack.length - 1];
  if (top) return { ino: top.ino, stat: top.stat, canonicalPath: here() };
  rootStat ??= await fs.getattr(fs.rootIno);
  return { ino: fs.rootIno, stat: rootStat, canonicalPath: '/' };
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
