/**
 * Copying guest files and trees to the host, safely, whatever the guest's
 * names and links say (a hostile guest chooses every byte of them):
 *  - nothing is written outside the target directory: every host path is
 *    the target plus the guest's name components, each created by us with
 *    O_EXCL and O_NOFOLLOW (files) or mkdir (directories); a component that
 *    is empty, "." or "..", or holds "/" or NUL, is renamed (its bad bytes
 *    percent-encoded) and the renaming said; an existing entry that is not
 *    a directory of ours is never followed or overwritten;
 *  - symbolic links are copied as links (their targets as bytes), never
 *    followed, on the guest or on the host;
 *  - sparse files stay sparse (only the filesystem's data extents are
 *    written), hard links stay links, modes and times are kept, owners too
 *    when running as root (unless noOwner);
 *  - device files, sockets and FIFOs are listed and skipped unless asked.
 */
import { constants, promises as fsp } from 'node:fs';
import type { FileExtent, GuestTree, WalkEntry } from '@guestlens/inspect';
import { execa } from 'execa';
import { GuestlensError } from '@guestlens/block';
import { displayName } from '../output/names.ts';

export interface CopyOptions {
  /** Keep owners (default: when running as root). */
  owner: boolean;
  /** Create device files and FIFOs (sockets are always skipped). */
  special: boolean;
  /** Called with each copied file's byte count (progress). */
  onBytes?(n: number): void;
  /** What was skipped or renamed (said on stderr by the caller). */
  note(message: string): void;
}

const CHUNK = 1024 * 1024;

/** A guest name component as a host one: bad components renamed, reported. */
function hostComponent(raw: Buffer, note: (m: string) => void, path: string): Buffer {
  const bad = raw.length === 0 || raw.equals(DOT) || raw.equals(DOTDOT) || raw.includes(0x2f) || raw.includes(0);
  if (!bad) return raw;
  let out = '';
  for (const b of raw) out += b === 0x2f || b === 0 || b === 0x25 || b === 0x2e ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  const renamed = Buffer.from(out || '%00', 'latin1');
  note(`${displayName(path)}: the name ${JSON.stringify(displayName(raw))} cannot be a host file name; copied as ${JSON.stringify(renamed.toString('latin1'))}`);
  return renamed;
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

interface Pending {
  host: Buffer;
  entry: WalkEntry;
}

/** Copy `guestPath` (a file, link or whole tree) into the existing host directory `hostDir`. */
export async function copyOut(tree: GuestTree, guestPath: string, hostDir: string, options: CopyOptions): Promise<{ files: number; bytes: number; skipped: number }> {
  const target = await fsp.realpath(hostDir);
  if (!(await fsp.stat(target)).isDirectory()) throw new GuestlensError('ENOTDIR', `${hostDir}: not a directory`);
  const root = Buffer.from(target);
  const stats = { files: 0, bytes: 0, skipped: 0 };
  const dirs: Pending[] = [];
  /** Host path of each directory entry depth: the stack of what we created. */
  const stack: Buffer[] = [];
  const links = new Map<string, Buffer>();
  let rootEntry: WalkEntry | undefined;
  for await (const e of tree.walk(guestPath, { recursive: true })) {
    let host: Buffer;
    if (e.depth === 0) {
      // "/" copies the root's contents into the target; anything else copies the entry itself.
      if (e.rawPath.equals(SLASH)) {
        stack[0] = root;
        rootEntry = e;
        continue;
      }
      const last = e.rawPath.subarray(e.rawPath.lastIndexOf(0x2f) + 1);
      host = Buffer.concat([root, SLASH, hostComponent(last, options.note, e.path)]);
    } else {
      host = Buffer.concat([stack[e.depth - 1], SLASH, hostComponent(e.rawName, options.note, e.path)]);
    }
    stack[e.depth] = host;
    stack.length = e.depth + 1;
    const key = `${e.device}:${e.ino}`;
    if (e.stat.type !== 'directory' && e.stat.nlink > 1 && links.has(key)) {
      await fsp.link(links.get(key) as Buffer, host);
      continue;
    }
    switch (e.stat.type) {
      case 'directory':
        await makeDirectory(host, e);
        dirs.push({ host, entry: e });
        continue;
      case 'file':
        await copyFile(tree, e, host, options, stats);
        break;
      case 'symlink':
        await fsp.symlink(Buffer.from(e.target ?? '', 'utf8'), host);
        break;
      case 'fifo':
      case 'chardev':
      case 'blockdev':
        if (!options.special) {
          stats.skipped++;
          options.note(`${displayName(e.path)}: a ${e.stat.type === 'fifo' ? 'FIFO' : 'device file'}, skipped (give --special to create it)`);
          continue;
        }
        await makeSpecial(host, e);
        break;
      default:
        stats.skipped++;
        options.note(`${displayName(e.path)}: a ${e.stat.type}, skipped`);
        continue;
    }
    if (e.stat.nlink > 1) links.set(key, host);
    await setMetadata(host, e, options);
  }
  // Directories last and deepest first: their times and modes would change as their contents were written.
  for (const d of dirs.reverse()) await setMetadata(d.host, d.entry, options);
  // The guest's "/" becomes the target itself: its times follow, as tar's "./" entry
  // does for virt-copy-out; its mode and owner stay the user's own.
  if (rootEntry) await fsp.utimes(target, seconds(rootEntry.stat.atime), seconds(rootEntry.stat.mtime));
  return stats;
}

async function makeDirectory(host: Buffer, e: WalkEntry): Promise<void> {
  try {
    await fsp.mkdir(host, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const st = await fsp.lstat(host);
    // Merging into an existing real directory is fine; a link or file in the way never is.
    if (!st.isDirectory()) throw new GuestlensError('EEXIST', `${host.toString()}: exists and is not a directory; ${displayName(e.path)} not copied`);
  }
}

async function copyFile(tree: GuestTree, e: WalkEntry, host: Buffer, options: CopyOptions, stats: { files: number; bytes: number }): Promise<void> {
  const handle = await fsp.open(host, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    const size = e.stat.size;
    const extents: FileExtent[] = e.fs.extents ? await e.fs.extents(e.ino) : [{ offset: 0, length: size, kind: 'data' }];
    for (const x of extents) {
      if (x.kind === 'hole' || x.kind === 'unwritten') continue;
      const end = Math.min(size, x.offset + x.length);
      for (let off = x.offset; off < end; off += CHUNK) {
        const data = await e.fs.read(e.ino, off, Math.min(CHUNK, end - off));
        if (data.length === 0) break;
        await handle.write(data, 0, data.length, off);
        options.onBytes?.(data.length);
        stats.bytes += data.length;
      }
    }
    // Holes at the end: the size, without writing them.
    await handle.truncate(size);
    stats.files++;
  } finally {
    await handle.close();
  }
}

async function makeSpecial(host: Buffer, e: WalkEntry): Promise<void> {
  const path = host.toString('utf8');
  if (!Buffer.from(path, 'utf8').equals(host)) throw new GuestlensError('EINVAL', `${displayName(e.path)}: a special file whose name is not UTF-8 cannot be created by mknod(1); not copied`);
  if (e.stat.type === 'fifo') await execa('mkfifo', ['-m', '600', '--', path]);
  else await execa('mknod', ['-m', '600', '--', path, e.stat.type === 'chardev' ? 'c' : 'b', String(e.stat.rdev?.major ?? 0), String(e.stat.rdev?.minor ?? 0)]);
}

async function setMetadata(host: Buffer, e: WalkEntry, options: CopyOptions): Promise<void> {
  const st = e.stat;
  if (options.owner) await fsp.lchown(host, st.uid, st.gid).catch(() => undefined);
  if (st.type !== 'symlink') await fsp.chmod(host, st.mode & 0o7777);
  await fsp.lutimes(host, seconds(st.atime), seconds(st.mtime));
}

const seconds = (x: { sec: number; nsec: number }) => x.sec + x.nsec / 1e9;

const SLASH = Buffer.from('/');
