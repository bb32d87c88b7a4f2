/** Formatting shared by the probes, as libblkid formats values. */

/** uuid_unparse(): bytes in stored order, lower case, 8-4-4-4-12. Undefined for an all-zero UUID (blkid prints none). */
export function formatUuid(bytes: Buffer): string | undefined {
  if (bytes.every((b) => b === 0)) return undefined;
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * A label field: up to the first NUL, trailing whitespace removed (as
 * blkid_probe_set_label does). Undefined when nothing is left.
 */
export function labelFrom(raw: Buffer, encoding: 'utf8' | 'latin1' = 'utf8'): string | undefined {
  let end = raw.indexOf(0);
  if (end < 0) end = raw.length;
  const text = raw.toString(encoding, 0, end).replace(/[\s]+$/u, '');
  return text.length ? text : undefined;
}

/** A UTF-16LE label (NTFS), trailing whitespace removed. */
export function labelFromUtf16(raw: Buffer): string | undefined {
  let end = 0;
  while (end + 1 < raw.length && (raw[end] !== 0 || raw[end + 1] !== 0)) end += 2;
  const text = raw.toString('utf16le', 0, end).replace(/[\s]+$/u, '');
  return text.length ? text : undefined;
}

export function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}
