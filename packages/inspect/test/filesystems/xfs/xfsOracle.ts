/**
 * Oracles for the XFS tests beyond kernel.ts's tree walk: the kernel's
 * extended attributes (getfattr over the mount), its extent maps (xfs_io
 * fiemap), and for version 4 filesystems, which this kernel cannot mount,
 * what xfs_db -r prints about the superblock, inodes and directories.
 */
import { execa } from 'execa';
import type { FileExtent, Filesystem } from '../../../src/filesystems/filesystem.ts';
import { sh } from '../../../../../test/support/run.ts';

/** getfattr's escaping of file names: octal \ooo for unusual bytes. */
function unescapeGetfattr(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; ) {
    if (s[i] === '\\' && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(parseInt(s.slice(i + 1, i + 4), 8));
      i += 4;
    } else {
      // A whole code point: one UTF-16 unit of a character beyond U+FFFF alone would encode as U+FFFD.
      const ch = String.fromCodePoint(s.codePointAt(i)!);
      bytes.push(...Buffer.from(ch, 'utf8'));
      i += ch.length;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Every extended attribute the kernel shows under `root` (as root): path → name → hex value. */
export async function kernelXattrs(root: string): Promise<Map<string, Map<string, string>>> {
  const r = await execa('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], { reject: false, maxBuffer: 1 << 30 });
  if (r.exitCode !== 0 && !r.stdout) throw new Error(`getfattr failed: ${r.stderr}`);
  const out = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      let path = unescapeGetfattr(line.slice(8)).slice(root.length);
      if (path === '') path = '/';
      current = new Map();
      out.set(path, current);
    } else if (current && line.includes('=')) {
      const eq = line.indexOf('=');
      const value = line.slice(eq + 1);
      current.set(unescapeGetfattr(line.slice(0, eq)), value.startsWith('0x') ? value.slice(2) : value);
    } else if (current && line.trim() && !line.startsWith('#')) {
      current.set(unescapeGetfattr(line.trim()), '');
    }
  }
  return out;
}

/** Path → inode number for every entry of a driver's tree. */
export async function driverPaths(fs: Filesystem): Promise<Map<string, number>> {
  const out = new Map<string, number>([['/', fs.rootIno]]);
  const visit = async (path: string, ino: number) => {
    for (const e of await fs.readdir(ino)) {
      const child = path === '/' ? `/${e.name}` : `${path}/${e.name}`;
      out.set(child, e.ino);
      const st = await fs.getattr(e.ino);
      if (st.type === 'directory') await visit(child, e.ino);
    }
  };
  await visit('/', fs.rootIno);
  return out;
}

/** The driver's attributes in kernelXattrs's shape (only files that have some). */
export async function driverXattrs(fs: Filesystem, paths: Map<string, number>): Promise<Map<string, Map<string, string>>> {
  const out = new Map<string, Map<string, string>>();
  for (const [path, ino] of paths) {
    const names = await fs.listxattr!(ino);
    if (!names.length) continue;
    const m = new Map<string, string>();
    for (const name of names.sort()) m.set(name, (await fs.getxattr!(ino, name)).toString('hex'));
    out.set(path, m);
  }
  return out;
}

/** The kernel's FIEMAP of a file through xfs_io, clipped to its size, as FileExtents (holes included). */
export async function kernelExtents(path: string, size: number): Promise<FileExtent[]> {
  const out = await sh('xfs_io', ['-r', '-c', 'fiemap -v', path]);
  const extents: FileExtent[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*\d+:\s*\[(\d+)\.\.(\d+)\]:\s*(hole|(\d+)\.\.(\d+))\s+(\d+)(?:\s+(0x[0-9a-f]+))?/.exec(line);
    if (!m) continue;
    const offset = Number(m[1]) * 512;
    const end = Math.min((Number(m[2]) + 1) * 512, size);
    if (end <= offset) continue;
    if (m[3] === 'hole') extents.push({ offset, length: end - offset, kind: 'hole' });
    else {
      const flags = parseInt(m[7] ?? '0x0', 16);
      extents.push({ offset, length: end - offset, kind: flags & 0x800 ? 'unwritten' : 'data', physical: Number(m[4]) * 512 });
    }
  }
  const last = extents[extents.length - 1];
  const covered = last ? last.offset + last.length : 0;
  if (covered < size) extents.push({ offset: covered, length: size - covered, kind: 'hole' });
  return mergeExtents(extents);
}

/** Join neighbours of the same kind that continue each other (physically too), so two maps of the same bytes compare equal. */
export function mergeExtents(extents: readonly FileExtent[]): FileExtent[] {
  const out: FileExtent[] = [];
  for (const e of extents) {
    const prev = out[out.length - 1];
    if (prev && prev.kind === e.kind && prev.offset + prev.length === e.offset && (e.kind === 'hole' || prev.physical! + prev.length === e.physical)) {
      prev.length += e.length;
      continue;
    }
    out.push({ ...e });
  }
  return out;
}

/** `xfs_db -r` with commands, its stdout. */
export async function xfsDb(image: string, commands: string[]): Promise<string> {
  const args = ['-r'];
  for (const c of commands) args.push('-c', c);
  args.push(image);
  const r = await execa('xfs_db', args, { reject: false, maxBuffer: 1 << 30, env: { TZ: 'UTC' } });
  if (r.exitCode !== 0) throw new Error(`xfs_db ${commands.slice(0, 3).join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** `field = value` lines as a map. */
export function parseFields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf(' = ');
    if (eq > 0) out.set(line.slice(0, eq).trim(), line.slice(eq + 3).trim());
  }
  return out;
}

/** One directory as xfs_db's `ls` prints it: name → inode number. */
export function parseXfsDbLs(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\d+\s+(\d+)\s+\S+\s+0x[0-9a-f]+\s+\d+\s+(.*) \((good|bad)\)$/.exec(line);
    if (m) out.set(m[2], Number(m[1]));
  }
  return out;
}
