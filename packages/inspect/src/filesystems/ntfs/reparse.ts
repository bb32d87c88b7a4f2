/**
 * Reparse points ($REPARSE_POINT): a tag saying which filter owns the file,
 * and that filter's data. Symbolic links (IO_REPARSE_TAG_SYMLINK), directory
 * junctions (MOUNT_POINT) and WSL symlinks are shown as symbolic links, WSL
 * sockets, FIFOs and devices as those types, and every other tag (WOF
 * compressed system files, OneDrive placeholders, dedup...) as a symlink
 * whose target names the tag, exactly as ntfs-3g shows them.
 *
 * Windows targets are Windows paths ("\??\C:\Users", "..\lib\x.dll"); as
 * ntfs-3g does, a target on this volume is translated to the path of the
 * file as stored (case corrected, '/' separators), absolute targets relative
 * to the volume's root ("/Users/..."; ntfs-3g puts its mount point before
 * them), and a target on another drive or volume to "/.NTFS-3G/C:/..."
 * (where ntfs-3g lets a user define the drive).
 */
import { FILE_ATTR, FILE_ROOT, REPARSE_TAG, REPARSE_TAG_IS_MICROSOFT, REPARSE_PLUGIN_SELECT, reparseTagName } from './layout.ts';

export interface ReparsePoint {
  tag: number;
  /** The tag's Windows name (SYMLINK, MOUNT_POINT, WOF, ...) or its hex value. */
  tagName: string;
  /** The filter's data (after the 8-byte header, or the 24-byte one of a non-Microsoft tag). */
  data: Buffer;
  /** The whole attribute value, as system.ntfs_reparse_data shows it. */
  raw: Buffer;
}

/** ntfs-3g's target for reparse points it cannot translate: "unsupported reparse tag 0x%08lx". */
export function unsupportedTarget(tag: number): string {
  return `unsupported reparse tag 0x${tag.toString(16).padStart(8, '0')}`;
}
/** Its length, which ntfs-3g reports as st_size of every such link (the format's length + 2). */
export const UNSUPPORTED_TARGET_LENGTH = 34;

export function parseReparsePoint(raw: Buffer): ReparsePoint | undefined {
  if (raw.length < 8) return undefined;
  const tag = raw.readUInt32LE(0);
  const headerSize = tag & REPARSE_TAG_IS_MICROSOFT ? 8 : 24;
  return { tag, tagName: reparseTagName(tag), data: raw.subarray(Math.min(headerSize, raw.length)), raw };
}

/** What ntfs-3g's reparse handling makes of a tag: the plugin it would use. */
export type ReparseKind = 'link' | 'wsl-special' | 'other';

export function reparseKind(tag: number): ReparseKind {
  const t = (tag & REPARSE_PLUGIN_SELECT) >>> 0;
  if (t === REPARSE_TAG.MOUNT_POINT || t === REPARSE_TAG.SYMLINK || t === REPARSE_TAG.LX_SYMLINK) return 'link';
  if (t === REPARSE_TAG.AF_UNIX || t === REPARSE_TAG.LX_FIFO || t === REPARSE_TAG.LX_CHR || t === REPARSE_TAG.LX_BLK) return 'wsl-special';
  return 'other';
}

/**
 * ntfs-3g's consistency rules for reparse data (valid_reparse_data): the
 * data length matches the attribute, and a junction or symlink's substitute
 * name lies inside it; a junction must be a directory; WSL special files
 * carry no data and the RECALL_ON_OPEN attribute.
 */
export function validReparseData(rp: ReparsePoint, isDirectory: boolean, fileAttributes: number): boolean {
  const raw = rp.raw;
  if (rp.tag === 0) return false;
  const dataLength = raw.readUInt16LE(4);
  if (dataLength + 8 + (rp.tag & REPARSE_TAG_IS_MICROSOFT ? 0 : 16) !== raw.length) return false;
  switch (rp.tag) {
    case REPARSE_TAG.MOUNT_POINT: {
      if (raw.length < 16) return false;
      const offs = raw.readUInt16LE(8);
      const lth = raw.readUInt16LE(10);
      return isDirectory && 16 + offs + lth <= raw.length;
    }
    case REPARSE_TAG.SYMLINK: {
      if (raw.length < 20) return false;
      const offs = raw.readUInt16LE(8);
      const lth = raw.readUInt16LE(10);
      return 20 + offs + lth <= raw.length;
    }
    case REPARSE_TAG.LX_SYMLINK:
      return dataLength > 4 && raw.length >= 12 && raw.readUInt32LE(8) === 2;
    case REPARSE_TAG.AF_UNIX:
    case REPARSE_TAG.LX_FIFO:
    case REPARSE_TAG.LX_CHR:
    case REPARSE_TAG.LX_BLK:
      return dataLength === 0 && (fileAttributes & FILE_ATTR.RECALL_ON_OPEN) !== 0;
    default:
      return true;
  }
}

/** What the link translation needs to know of the volume. */
export interface ReparseResolver {
  /** The entry of `dir` equal to `name` ignoring case (the first in index order): its inode and its name as stored. */
  fixName(dir: number, name: Uint16Array): Promise<{ ino: number; name: Uint16Array } | undefined>;
  /** Whether `ino` is a directory (by its MFT record) and a reparse point, and its first name's parent directory (none for the root). */
  describe(ino: number): Promise<{ isDirectory: boolean; isReparse: boolean; parent: number | undefined } | undefined>;
  /** Whether "/.NTFS-3G/X:" exists for drive letter `letter` (undefined: could not tell). */
  driveLetterDefined(letter: string): Promise<boolean | undefined>;
}

const BS = 0x5c; // '\'
const SLASH = 0x2f;
const COLON = 0x3a;
const QUESTION = 0x3f;
const DOT = 0x2e;
const NTFS3G_DIR = '.NTFS-3G/';

/**
 * The target ntfs-3g shows for the link reparse point `rp` of inode `ino`
 * (absolute targets relative to the volume root), or undefined when it
 * shows "unsupported reparse tag" instead.
 */
export async function linkTarget(r: ReparseResolver, ino: number, rp: ReparsePoint, isDirectory: boolean): Promise<string | undefined> {
  const raw = rp.raw;
  switch (rp.tag) {
    case REPARSE_TAG.MOUNT_POINT: {
      const offs = raw.readUInt16LE(8);
      const lth = raw.readUInt16LE(10);
      const p = new Utf16View(raw, 16 + offs);
      return fullLink(r, p, lth >> 1, isDirectory);
    }
    case REPARSE_TAG.SYMLINK: {
      const offs = raw.readUInt16LE(8);
      const lth = raw.readUInt16LE(10);
      const relative = (raw.readUInt32LE(16) & 1) !== 0;
      const p = new Utf16View(raw, 20 + offs);
      const count = lth >> 1;
      if (p.at(0) === BS) {
        if (p.at(1) === QUESTION || p.at(1) === BS) return relative ? undefined : fullLink(r, p, count, isDirectory);
        return relative ? absLink(r, p, count, isDirectory) : undefined;
      }
      if (p.at(1) === COLON) return relative ? absLink(r, p, count, isDirectory) : undefined;
      return relative ? relLink(r, ino, p, count, isDirectory) : undefined;
    }
    case REPARSE_TAG.LX_SYMLINK: {
      const bytes = raw.subarray(12, 8 + raw.readUInt16LE(4));
      const nul = bytes.indexOf(0);
      return (nul < 0 ? bytes : bytes.subarray(0, nul)).toString('utf8');
    }
    default:
      return undefined;
  }
}

/**
 * UTF-16 code units over a buffer, writable in place (the translation
 * rewrites separators and case as it goes, as ntfs-3g does). Reads past the
 * buffer give 0, where ntfs-3g would read the bytes that follow.
 */
class Utf16View {
  private readonly units: number[] = [];
  constructor(buf: Buffer, start: number) {
    for (let at = start; at + 1 < buf.length; at += 2) this.units.push(buf.readUInt16LE(at));
  }
  at(i: number): number {
    return i >= 0 && i < this.units.length ? this.units[i] : 0;
  }
  startsWith(prefix: string): boolean {
    for (let i = 0; i < prefix.length; i++) if (this.at(i) !== prefix.charCodeAt(i)) return false;
    return true;
  }
  set(i: number, v: number): void {
    if (i >= 0 && i < this.units.length) this.units[i] = v;
  }
  slice(from: number, n: number): Uint16Array {
    const out = new Uint16Array(Math.max(0, n));
    for (let i = 0; i < out.length; i++) out[i] = this.at(from + i);
    return out;
  }
  /** ntfs_ucstombs: UTF-8 of n units from `from`, undefined for a lone surrogate or an empty string. */
  text(from: number, n: number): string | undefined {
    if (n <= 0) return undefined;
    let s = '';
    for (let i = 0; i < n; i++) {
      const c = this.at(from + i);
      if (c === 0) break;
      if (c >= 0xd800 && c <= 0xdbff) {
        const d = this.at(from + i + 1);
        if (i + 1 >= n || d < 0xdc00 || d > 0xdfff) return undefined;
        s += String.fromCharCode(c, d);
        i++;
        continue;
      }
      if (c >= 0xdc00 && c <= 0xdfff) return undefined;
      s += String.fromCharCode(c);
    }
    return s.length ? s : undefined;
  }
}

/** Translate an absolute path (components separated by '\') from the root, fixing case in place; the path when it names a file of the right kind. */
async function searchAbsolute(r: ReparseResolver, p: Utf16View, base: number, count: number, isDirectory: boolean): Promise<string | undefined> {
  let dir: number | undefined = FILE_ROOT;
  let info: Awaited<ReturnType<ReparseResolver['describe']>> | undefined;
  let start = 0;
  // Each step consumes a component, so this ends within `count` steps.
  do {
    let len = 0;
    while (start + len < count && p.at(base + start + len) !== BS) len++;
    const found: Awaited<ReturnType<ReparseResolver['fixName']>> = len > 0 ? await r.fixName(dir!, p.slice(base + start, len)) : undefined;
    info = undefined;
    if (found) {
      for (let i = 0; i < found.name.length; i++) p.set(base + start + i, found.name[i]);
      info = await r.describe(found.ino);
      dir = found.ino;
      start += len;
      if (start < count) p.set(base + start++, SLASH);
    }
  } while (info && info.isDirectory && !info.isReparse && start < count);
  if (info && ((info.isDirectory ? isDirectory : !isDirectory) || info.isReparse)) return p.text(base, count);
  return undefined;
}

function driveForm(t: string): string {
  let s = t.replace(/\\/g, '/');
  if (s[1] === ':' && s[0] >= 'a' && s[0] <= 'z') s = s[0].toUpperCase() + s.slice(1);
  return s;
}

/** A junction or a full symlink target: "\??\X:\path" or "\??\Volume{GUID}\". */
async function fullLink(r: ReparseResolver, j: Utf16View, count: number, isDirectory: boolean): Promise<string | undefined> {
  const dirJunction = count >= 7 && j.startsWith('\\??\\') && j.at(4) !== 0 && j.at(5) === COLON && j.at(6) === BS;
  const volJunction = !dirJunction && count >= 12 && j.startsWith('\\??\\Volume{') && j.at(count - 1) === BS;
  let full: string | undefined;
  if (dirJunction && j.at(7) !== 0 && (await r.driveLetterDefined(String.fromCharCode(j.at(4)))) === false) {
    const t = await searchAbsolute(r, j, 7, count - 7, isDirectory);
    if (t !== undefined) full = `/${t}`;
  }
  if ((dirJunction && full === undefined) || volJunction) {
    const t = j.text(4, volJunction ? count - 5 : count - 4);
    if (t !== undefined) full = `/${NTFS3G_DIR}${driveForm(t)}`;
  }
  return full;
}

/** A symlink target with the absolute flag clear but rooted: "X:\path" or "\path". */
async function absLink(r: ReparseResolver, j: Utf16View, count: number, isDirectory: boolean): Promise<string | undefined> {
  const fullPath = count >= 3 && j.at(0) !== 0 && j.at(1) === COLON && j.at(2) === BS;
  const absPath = !fullPath && j.at(0) === BS;
  let full: string | undefined;
  if ((fullPath && j.at(3) !== 0 && (await r.driveLetterDefined(String.fromCharCode(j.at(0)))) === false) || absPath) {
    const t = absPath ? await searchAbsolute(r, j, 1, count - 1, isDirectory) : await searchAbsolute(r, j, 3, count - 3, isDirectory);
    if (t !== undefined) full = `/${t}`;
  }
  if (fullPath && full === undefined) {
    const t = j.text(0, count);
    if (t !== undefined) full = `/${NTFS3G_DIR}${driveForm(t)}`;
  }
  return full;
}

/** A relative symlink target: resolved from the link's directory, case fixed, the original shape kept. */
async function relLink(r: ReparseResolver, ino: number, p: Utf16View, count: number, isDirectory: boolean): Promise<string | undefined> {
  let pos = 0;
  let ok = true;
  let moreLinks = false;
  let cur = (await r.describe(ino))?.parent;
  let max = 32;
  while (cur !== undefined && ok && !moreLinks && pos < count - 1 && --max) {
    if (count >= pos + 2 && p.at(pos) === DOT && p.at(pos + 1) === BS) {
      p.set(pos + 1, SLASH);
      pos += 2;
    } else if (count >= pos + 3 && p.at(pos) === DOT && p.at(pos + 1) === DOT && p.at(pos + 2) === BS) {
      p.set(pos + 2, SLASH);
      pos += 3;
      const parent: number | undefined = (await r.describe(cur))?.parent;
      cur = parent;
      if (cur === undefined) ok = false;
    } else {
      let lth = 0;
      while (pos + lth < count && p.at(pos + lth) !== BS) lth++;
      const found = lth > 0 ? await r.fixName(cur, p.slice(pos, lth)) : undefined;
      if (!found) {
        ok = false;
        break;
      }
      for (let i = 0; i < found.name.length; i++) p.set(pos + i, found.name[i]);
      const info = await r.describe(found.ino);
      if (!info) {
        ok = false;
        break;
      }
      cur = found.ino;
      if (info.isReparse) moreLinks = true;
      if (pos + lth < count) {
        p.set(pos + lth, SLASH);
        pos += lth + 1;
      } else {
        pos += lth;
        if (!moreLinks && info.isDirectory !== isDirectory) ok = false;
      }
    }
  }
  return ok ? p.text(0, count) : undefined;
}
