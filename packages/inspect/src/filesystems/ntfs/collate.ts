/**
 * How directory indexes order names (COLLATION_FILE_NAME): by the names
 * upper-cased with the volume's $UpCase table, then by length, then by the
 * first code unit where the names differ as stored. Lookups descend the
 * B+ tree with the same order; an exact lookup needs all three steps, a
 * case-insensitive one only the first two.
 */
import type { Upcase } from './upcase.ts';

/** A name as UTF-16 code units. */
export type Utf16 = Uint16Array;

export function utf16Of(name: string): Utf16 {
  const out = new Uint16Array(name.length);
  for (let i = 0; i < name.length; i++) out[i] = name.charCodeAt(i);
  return out;
}

export function utf16FromBytes(bytes: Buffer): Utf16 {
  const out = new Uint16Array(bytes.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readUInt16LE(i * 2);
  return out;
}

/** -1, 0, 1: the order of `a` and `b` in a filename index, exact (case-sensitive) equality for 0. */
export function collateFileNames(a: Utf16, b: Utf16, upcase: Upcase): number {
  const n = Math.min(a.length, b.length);
  let firstRawDiff = -1;
  for (let i = 0; i < n; i++) {
    if (firstRawDiff < 0 && a[i] !== b[i]) firstRawDiff = i;
    const ua = upcase.up(a[i]);
    const ub = upcase.up(b[i]);
    if (ua !== ub) return ua < ub ? -1 : 1;
  }
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  if (firstRawDiff < 0) return 0;
  return a[firstRawDiff] < b[firstRawDiff] ? -1 : 1;
}

/** -1, 0, 1 ignoring case: 0 when the names are equal once upper-cased. */
export function collateIgnoringCase(a: Utf16, b: Utf16, upcase: Upcase): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ua = upcase.up(a[i]);
    const ub = upcase.up(b[i]);
    if (ua !== ub) return ua < ub ? -1 : 1;
  }
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return 0;
}

export function sameUtf16(a: Utf16, b: Utf16): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
