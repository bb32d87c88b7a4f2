/**
 * Interix (Services for Unix) special files, which ntfs-3g also writes for
 * `ln -s`, mkfifo and mknod: a file with the SYSTEM attribute whose data is
 * a magic and a payload. Data of 0 bytes is a FIFO and of 1 byte a socket
 * (unless the file is also HIDDEN); "IntxLNK\1" and a UTF-16 target is a
 * symbolic link; "IntxBLK\0"/"IntxCHR\0" and two 64-bit numbers a device.
 * ntfs-3g only looks at files of at most 8 + 2 * PATH_MAX bytes.
 */

export const INTX_SYMBOLIC_LINK = 0x014b4e4c78746e49n; // "IntxLNK\1"
export const INTX_CHARACTER_DEVICE = 0x0052484378746e49n; // "IntxCHR\0"
export const INTX_BLOCK_DEVICE = 0x004b4c4278746e49n; // "IntxBLK\0"
export const INTX_MAGIC_SIZE = 8;
/** offsetof(INTX_FILE, device_end). */
export const INTX_DEVICE_SIZE = 24;
const PATH_MAX = 4096;
/** The largest data ntfs-3g reads to look for an Interix type. */
export const INTX_MAX_SIZE = INTX_MAGIC_SIZE + 2 * PATH_MAX;

export type InterixType =
  | { type: 'fifo' }
  | { type: 'socket' }
  | { type: 'symlink'; target: string }
  | { type: 'blockdev' | 'chardev'; major: bigint; minor: bigint }
  | { type: 'file' };

/** The type by size alone (what needs no read). */
export function interixBySize(size: number, hidden: boolean): InterixType | undefined {
  if (!hidden && size === 0) return { type: 'fifo' };
  if (!hidden && size === 1) return { type: 'socket' };
  return undefined;
}

/** Whether ntfs-3g reads the data to look for a magic. */
export function interixNeedsContent(size: number): boolean {
  return size > INTX_MAGIC_SIZE && size <= INTX_MAX_SIZE;
}

/** The type the content says; undefined when the target is not valid UTF-16 (ntfs-3g fails the stat). */
export function interixByContent(data: Buffer): InterixType | undefined {
  const magic = data.readBigUInt64LE(0);
  if ((magic === INTX_BLOCK_DEVICE || magic === INTX_CHARACTER_DEVICE) && data.length === INTX_DEVICE_SIZE) {
    return { type: magic === INTX_BLOCK_DEVICE ? 'blockdev' : 'chardev', major: data.readBigUInt64LE(8), minor: data.readBigUInt64LE(16) };
  }
  if (magic === INTX_SYMBOLIC_LINK) {
    const units = (data.length - INTX_MAGIC_SIZE) >> 1;
    const target = strictUtf16(data.subarray(INTX_MAGIC_SIZE, INTX_MAGIC_SIZE + units * 2));
    return target === undefined ? undefined : { type: 'symlink', target };
  }
  return { type: 'file' };
}

/** UTF-16LE to a string up to the first NUL; undefined for a lone surrogate (ntfs_ucstombs fails on it). */
export function strictUtf16(b: Buffer): string | undefined {
  let s = '';
  for (let i = 0; i + 1 < b.length; i += 2) {
    const c = b.readUInt16LE(i);
    if (c === 0) break;
    if (c >= 0xd800 && c <= 0xdbff) {
      if (i + 3 >= b.length) return undefined;
      const d = b.readUInt16LE(i + 2);
      if (d < 0xdc00 || d > 0xdfff) return undefined;
      s += String.fromCharCode(c, d);
      i += 2;
      continue;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return undefined;
    s += String.fromCharCode(c);
  }
  return s;
}
