/**
 * The Sleuth Kit's body file, version 3, as `fls -r -m /` writes it and
 * `mactime -b` reads it:
 *   MD5|name|inode|mode_as_string|UID|GID|size|atime|mtime|ctime|crtime
 * times in UNIX seconds (0 when unknown), MD5 "0" unless computed, the mode
 * as TSK prints it ("r/rrw-r--r--": the directory entry's type, "/", the
 * inode's type and permissions), a symbolic link's name followed by
 * " -> TARGET". Deleted inodes no name reaches are TSK's orphans:
 * "$OrphanFiles/OrphanFile-INO (deleted)" under a virtual "$OrphanFiles"
 * directory whose inode number is one past the last.
 *
 * Names are bytes a guest chose; a "|" or a newline in one would break the
 * format (TSK writes them raw), so "\", "|", control characters and bytes
 * that are not UTF-8 are written as \\, \x7c, \xNN: every row keeps its
 * eleven fields.
 */
import type { FileStat, FileType, Timestamp } from '@guestlens/inspect';
import { permissionString } from './modes.ts';

const TSK_TYPE: Record<FileType, string> = { file: 'r', directory: 'd', symlink: 'l', chardev: 'c', blockdev: 'b', fifo: 'p', socket: 's', unknown: '-' };

/** TSK's mode string: name type, "/", meta type and permissions. */
export function tskMode(nameType: FileType | undefined, st: FileStat): string {
  return `${nameType ? TSK_TYPE[nameType] : '-'}/${TSK_TYPE[st.type]}${permissionString(st.mode)}`;
}

/** A name for a body file: safe to split on "|" and on newlines. */
export function bodyName(raw: Buffer): string {
  const s = raw.toString('utf8');
  const valid = Buffer.from(s, 'utf8').equals(raw);
  // C1 controls (U+0080-U+009F) are terminal controls too (U+009B is CSI): written as their UTF-8 bytes, as invalid bytes are.
  if (valid && !/[\\|\u0000-\u001f\u007f-\u009f]/.test(s)) return s;
  if (valid) return s.replace(/[\\|\u0000-\u001f\u007f-\u009f]/g, (c) => (c === '\\' ? '\\\\' : [...Buffer.from(c, 'utf8')].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')));
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i];
    if (b === 0x5c) out += '\\\\';
    else if (b < 0x20 || b === 0x7c || b === 0x7f || b >= 0x80) out += `\\x${b.toString(16).padStart(2, '0')}`;
    else out += String.fromCharCode(b);
  }
  return out;
}

const sec = (t: Timestamp | undefined) => (t ? String(t.sec) : '0');

export function bodyLine(fields: { md5?: string; name: string; inode: number | string; mode: string; stat: FileStat | undefined }): string {
  const st = fields.stat;
  if (!st) return `${fields.md5 ?? '0'}|${fields.name}|${fields.inode}|${fields.mode}|0|0|0|0|0|0|0\n`;
  return `${fields.md5 ?? '0'}|${fields.name}|${fields.inode}|${fields.mode}|${st.uid}|${st.gid}|${st.size}|${sec(st.atime)}|${sec(st.mtime)}|${sec(st.ctime)}|${sec(st.crtime)}\n`;
}
