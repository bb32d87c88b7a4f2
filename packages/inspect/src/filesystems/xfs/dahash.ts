/**
 * The name hash that orders directory leaf entries and attribute entries
 * (xfs_da_hashname): 7-bit rotations mixing four bytes at a time. On an
 * "ascii-ci" filesystem directory names hash and compare case-folded, where
 * the fold maps A-Z and the Latin-1 capitals (0xC0-0xDE but 0xD7) to lower
 * case, one byte at a time.
 */

function rol32(x: number, n: number): number {
  return ((x << n) | (x >>> (32 - n))) >>> 0;
}

export function daHashName(name: Uint8Array): number {
  let hash = 0;
  let i = 0;
  let n = name.length;
  for (; n >= 4; n -= 4, i += 4) {
    hash = ((name[i] << 21) ^ (name[i + 1] << 14) ^ (name[i + 2] << 7) ^ name[i + 3] ^ rol32(hash, 28)) >>> 0;
  }
  switch (n) {
    case 3:
      return ((name[i] << 14) ^ (name[i + 1] << 7) ^ name[i + 2] ^ rol32(hash, 21)) >>> 0;
    case 2:
      return ((name[i] << 7) ^ name[i + 1] ^ rol32(hash, 14)) >>> 0;
    case 1:
      return (name[i] ^ rol32(hash, 7)) >>> 0;
    default:
      return hash;
  }
}

/** The case fold of ascii-ci filesystems. */
export function asciiCiFold(c: number): number {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0xc0 && c <= 0xd6) || (c >= 0xd8 && c <= 0xde) ? c + 0x20 : c;
}

export function asciiCiHashName(name: Uint8Array): number {
  let hash = 0;
  for (const c of name) hash = (asciiCiFold(c) ^ rol32(hash, 7)) >>> 0;
  return hash;
}

/** Whether two names are equal under the ascii-ci fold. */
export function asciiCiEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && asciiCiFold(a[i]) !== asciiCiFold(b[i])) return false;
  return true;
}
