/**
 * A guest's file tree as its kernel would mount it: the filesystems of a
 * mount map (from inspection of /etc/fstab, or given by hand as -m
 * DEV[:MOUNTPOINT]) stacked on each other. Paths resolve across mount points,
 * confined to the guest (pathResolver.ts). `walk()` visits a subtree by
 * inode, not by path, so names that are not valid UTF-8 (or that a hostile
 * guest made up) never have to round-trip through a string.
 */
import { GuestOpenError, GuestPathError } from '../errors.ts';
import { decodeName } from '../filesystems/names.ts';
import type { FileStat, FileType, Filesystem } from '../filesystems/filesystem.ts';
import type { Guest } from './guest.ts';
import { FileTree, type GuestFilesystem } from './guestFilesystem.ts';
import type { MountedFilesystem, MountTable } from './pathResolver.ts';

export interface MountSpec {
  /** The guest device (/dev/sda1, /dev/VG/LV, btrfsvol:/dev/sda3/root). */
  device: string;
  /** Where it is mounted ("/", "/var", ...). */
  mountpoint: string;
}

export interface MountedDevice extends MountSpec {
  filesystem: GuestFilesystem;
}

/** One entry of a walk. */
export interface WalkEntry {
  /** The path from the guest root as bytes, "/"-separated (each component as stored). */
  rawPath: Buffer;
  /** The same, decoded for display (see filesystems/names.ts). */
  path: string;
  /** The entry's name as stored (the last component; empty for the walk's start). */
  rawName: Buffer;
  name: string;
  stat: FileStat;
  ino: number;
  fs: Filesystem;
  device: string;
  /** A symbolic link's target (read for every link). */
  target?: string;
  /** Depth below the walk's start (0 for the start itself). */
  depth: number;
  /** The type the directory entry records (undefined for the start, and where the format records none). */
  entryType?: FileType;
}

export interface WalkOptions {
  /** Descend into subdirectories (default true). */
  recursive?: boolean;
  /** Visit siblings in byte order of their names (virt-ls, find) instead of on-disk order (fls). */
  sorted?: boolean;
  /** Most entries one walk visits (a hostile image with a billion names is cut off): default 10 million. */
  maxEntries?: number;
}

/** Mount points normalised: one leading slash, no trailing one, no empty or "." components. */
export function normaliseMountpoint(mountpoint: string): string {
  const parts = mountpoint.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new GuestOpenError(mountpoint, 'a mount point may not contain ".."');
  return '/' + parts.join('/');
}

export class GuestTree extends FileTree {
  private constructor(
    mounts: MountTable,
    /** What is mounted where, in mount order (shallowest first). */
    readonly mounted: MountedDevice[],
  ) {
    super(mounts);
  }

  /** Mount `specs` of `guest` (one must be "/"). Devices that do not exist or cannot be read are errors naming them. */
  static async open(guest: Guest, specs: MountSpec[]): Promise<GuestTree> {
    const normalised = specs.map((s) => ({ device: s.device, mountpoint: normaliseMountpoint(s.mountpoint) }));
    normalised.sort((a, b) => a.mountpoint.split('/').length - b.mountpoint.split('/').length || (a.mountpoint < b.mountpoint ? -1 : 1));
    if (!normalised.some((s) => s.mountpoint === '/')) {
      throw new GuestOpenError(specs.map((s) => s.device).join(', ') || 'the guest', 'nothing is mounted at "/"; give -m DEVICE for the root filesystem');
    }
    const mounted: MountedDevice[] = [];
    for (const spec of normalised) {
      const info = await guest.filesystem(spec.device);
      if (!info) {
        const known = (await guest.filesystems()).map((f) => f.device).join(', ');
        throw new GuestOpenError(spec.device, `the guest has no such device (it has ${known || 'none'})`);
      }
      mounted.push({ ...spec, filesystem: await info.open() });
    }
    const byPath = new Map<string, MountedFilesystem>();
    for (const m of mounted) byPath.set(m.mountpoint, { fs: m.filesystem.fs, device: m.device });
    const root = byPath.get('/') as MountedFilesystem;
    return new GuestTree({ root, mountedAt: (path) => (path === '/' ? undefined : byPath.get(path)) }, mounted);
  }

  /** Visit `start` (resolved, a final symlink not followed) and, for directories, what is below it. */
  async *walk(start: string, options: WalkOptions = {}): AsyncGenerator<WalkEntry> {
    const recursive = options.recursive ?? true;
    const maxEntries = options.maxEntries ?? 10_000_000;
    const top = await this.resolve(start, false);
    const startPath = Buffer.from(top.canonicalPath, 'utf8');
    let visited = 0;
    const entry = async (rawPath: Buffer, rawName: Buffer, name: string, fs: Filesystem, device: string, ino: number, stat: FileStat, depth: number): Promise<WalkEntry> => {
      const e: WalkEntry = { rawPath, path: displayPath(rawPath), rawName, name, stat, ino, fs, device, depth };
      if (stat.type === 'symlink') e.target = await fs.readlink(ino);
      return e;
    };
    yield await entry(startPath, Buffer.alloc(0), '', top.fs, top.device, top.ino, top.stat, 0);
    if (top.stat.type !== 'directory') return;
    const mountedAt = this.mounts.mountedAt;
    // The directories on the path from the start down to the one being listed: a damaged image can
    // make a directory its own descendant (a FAT entry whose cluster is its parent's, an ext4 block
    // shared), which would otherwise recurse until the stack runs out.
    const ancestors = new Map<Filesystem, Set<number>>();
    const visit = async function* (dirPath: Buffer, fs: Filesystem, device: string, ino: number, depth: number): AsyncGenerator<WalkEntry> {
      const onPath = ancestors.get(fs) ?? new Set<number>();
      ancestors.set(fs, onPath);
      if (onPath.has(ino) || depth > MAX_WALK_DEPTH) {
        throw new GuestPathError('ELOOP', displayPath(dirPath), device, onPath.has(ino) ? `directory inode ${ino} contains itself (the filesystem is damaged): the walk stops` : `more than ${MAX_WALK_DEPTH} directory levels: the walk stops`);
      }
      onPath.add(ino);
      try {
        yield* listing(dirPath, fs, device, ino, depth);
      } finally {
        onPath.delete(ino);
      }
    };
    const listing = async function* (dirPath: Buffer, fs: Filesystem, device: string, ino: number, depth: number): AsyncGenerator<WalkEntry> {
      const entries = await fs.readdir(ino);
      if (options.sorted) entries.sort((a, b) => Buffer.compare(a.rawName, b.rawName));
      for (const d of entries) {
        if (++visited > maxEntries) throw new GuestPathError('EINVAL', displayPath(dirPath), device, `more than ${maxEntries} entries under ${start}: the walk stops`);
        const childPath = dirPath.length === 1 ? Buffer.concat([dirPath, d.rawName]) : Buffer.concat([dirPath, SLASH, d.rawName]);
        let childFs = fs;
        let childDevice = device;
        let childIno = d.ino;
        let stat = await fs.getattr(d.ino);
        if (stat.type === 'directory') {
          const m = await mountedAt(displayPath(childPath));
          if (m) {
            childFs = m.fs;
            childDevice = m.device;
            childIno = m.fs.rootIno;
            stat = await m.fs.getattr(childIno);
          }
        }
        const child = await entry(childPath, d.rawName, d.name, childFs, childDevice, childIno, stat, depth + 1);
        if (d.type !== 'unknown') child.entryType = d.type;
        yield child;
        if (recursive && stat.type === 'directory') yield* visit(childPath, childFs, childDevice, childIno, depth + 1);
      }
    };
    yield* visit(startPath, top.fs, top.device, top.ino, 0);
  }
}

const SLASH = Buffer.from('/');
/** Deeper than any path the kernel resolves (PATH_MAX 4096 bytes: at most 2048 levels). */
const MAX_WALK_DEPTH = 2048;

/** A raw path for display: each component decoded as readdir decodes names. */
function displayPath(raw: Buffer): string {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i <= raw.length; i++) {
    if (i === raw.length || raw[i] === 0x2f) {
      parts.push(decodeName(raw.subarray(start, i)));
      start = i + 1;
    }
  }
  return parts.join('/');
}
