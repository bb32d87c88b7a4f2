/**
 * systemd's notion of printable text (utf8_is_printable_newline): valid
 * UTF-8 by its rules (shortest form, no surrogates, no U+FDD0..U+FDEF, no
 * U+xxFFFE/U+xxFFFF), and no control characters: C0 except TAB and
 * (optionally) LF, DEL, and C1 (U+0080..U+009F). It decides whether
 * journalctl prints a value as text or as "[N blob data]", a JSON string or
 * an array of byte values, an export text line or a binary field.
 */

function isControl(c: number): boolean {
  return (c < 0x20 && c !== 0x09 && c !== 0x0a) || (c >= 0x7f && c <= 0x9f);
}

function isValidCodePoint(c: number): boolean {
  if (c >= 0x110000) return false;
  if ((c & 0xfffff800) === 0xd800) return false;
  if (c >= 0xfdd0 && c <= 0xfdef) return false;
  if ((c & 0xfffe) === 0xfffe) return false;
  return true;
}

function encodedLength(c: number): number {
  return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : c < 0x200000 ? 4 : c < 0x4000000 ? 5 : 6;
}

/** Length of the valid, printable character at `i`, or 0. */
function printableAt(b: Uint8Array, i: number, end: number, allowNewline: boolean): number {
  const c0 = b[i];
  if (c0 < 0x80) {
    if (isControl(c0) || (!allowNewline && c0 === 0x0a)) return 0;
    return 1;
  }
  const len = (c0 & 0xe0) === 0xc0 ? 2 : (c0 & 0xf0) === 0xe0 ? 3 : (c0 & 0xf8) === 0xf0 ? 4 : (c0 & 0xfc) === 0xf8 ? 5 : (c0 & 0xfe) === 0xfc ? 6 : 0;
  if (len === 0 || i + len > end) return 0;
  let c = c0 & (0xff >> (len + 1));
  for (let k = 1; k < len; k++) {
    const x = b[i + k];
    if ((x & 0xc0) !== 0x80) return 0;
    c = (c << 6) | (x & 0x3f);
  }
  if (encodedLength(c) !== len || !isValidCodePoint(c) || isControl(c)) return 0;
  return len;
}

export function isPrintable(b: Uint8Array, start = 0, end = b.length, allowNewline = true): boolean {
  for (let i = start; i < end; ) {
    const c = b[i];
    if (c >= 0x20 && c < 0x7f) {
      i++;
      continue;
    }
    const n = printableAt(b, i, end, allowNewline);
    if (n === 0) return false;
    i += n;
  }
  return true;
}

/**
 * Bytes made safe for a terminal: printable characters, TAB and LF as they
 * are; every other byte (ESC, CR, BEL, DEL, C1, invalid UTF-8) as \xNN.
 */
export function escapeControl(b: Buffer): Buffer {
  if (isPrintable(b)) return b;
  const parts: Buffer[] = [];
  let run = 0;
  for (let i = 0; i < b.length; ) {
    const n = printableAt(b, i, b.length, true);
    if (n > 0) {
      i += n;
      continue;
    }
    parts.push(b.subarray(run, i), Buffer.from(`\\x${b[i].toString(16).padStart(2, '0')}`, 'latin1'));
    i++;
    run = i;
  }
  parts.push(b.subarray(run));
  return Buffer.concat(parts);
}
