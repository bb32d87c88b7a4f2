/**
 * Key and value names. A hive stores a name either "compressed" (one byte per
 * character: the low byte of a UTF-16 code unit, so Latin-1 decodes it
 * exactly) or as UTF-16LE. Names may hold any code unit, NUL included
 * (Windows counts name lengths, it does not terminate them), and UTF-16 names
 * may hold unpaired surrogates: both are kept as they are, one JS code unit
 * per stored code unit, so every name round-trips and stays unique.
 *
 * Windows compares names case-insensitively by upcasing each UTF-16 code unit
 * (RtlUpcaseUnicodeChar over the NLS upcase table). We upcase each code unit
 * with JavaScript's simple case mapping and keep units whose upper case is
 * not a single unit (ß, ligatures) unchanged, as Windows does. For ASCII this
 * is exactly Windows' rule; for other scripts it agrees except for a handful
 * of characters where the NLS table and Unicode differ.
 */

export function decodeName(raw: Buffer, compressed: boolean): string {
  if (compressed) return raw.toString('latin1');
  // An odd trailing byte cannot be a code unit: it is dropped, as Windows would never write one.
  return raw.toString('utf16le', 0, raw.length & ~1);
}

const upcaseCache = new Map<number, number>();

/** Windows' upper case of one UTF-16 code unit. */
export function upcaseUnit(unit: number): number {
  if (unit < 0x80) return unit >= 0x61 && unit <= 0x7a ? unit - 0x20 : unit;
  if (unit >= 0xd800 && unit <= 0xdfff) return unit; // surrogates have no case of their own
  let up = upcaseCache.get(unit);
  if (up === undefined) {
    const s = String.fromCharCode(unit).toUpperCase();
    up = s.length === 1 ? s.charCodeAt(0) : unit;
    if (upcaseCache.size < 65536) upcaseCache.set(unit, up);
  }
  return up;
}

/** The name as Windows compares it. */
export function upcaseName(name: string): string {
  let ascii = true;
  for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) >= 0x80) ascii = false;
  if (ascii) return name.toUpperCase();
  let out = '';
  for (let i = 0; i < name.length; i++) out += String.fromCharCode(upcaseUnit(name.charCodeAt(i)));
  return out;
}

export function namesEqual(a: string, b: string): boolean {
  return a.length === b.length && (a === b || upcaseName(a) === upcaseName(b));
}

/** Whether every code unit is ASCII: then upper case (and so the lh hash) is certain to be Windows'. */
export function isAscii(name: string): boolean {
  for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** The hash a hash leaf (lh) stores for a subkey: H = 37 * H + C over the upper-cased code units, modulo 2^32. */
export function nameHash(name: string): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (Math.imul(h, 37) + upcaseUnit(name.charCodeAt(i))) >>> 0;
  return h;
}
