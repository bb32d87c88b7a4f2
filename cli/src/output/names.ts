/**
 * Printing names and strings a guest controls. A hostile guest's file names,
 * labels and log lines may hold control characters (terminal escapes: ESC,
 * CSI, OSC 52 clipboard writes) and bytes that are not UTF-8; none of that
 * reaches a terminal raw.
 *
 *  - text: names with no control character and valid UTF-8 print as they are
 *    (so output stays byte for byte what the virt tools print); any other
 *    name is escaped whole as GNU `ls -b` escapes: \n \t \r \a \b \f \v, \\
 *    for a backslash, \ooo (octal) for other control bytes and bytes that are
 *    not part of valid UTF-8;
 *  - CSV: quoted as virt-df/virt-ls quote (see csv.ts), after the same escaping;
 *  - JSON: the decoded name, plus the raw bytes (hex) when they differ from
 *    its UTF-8 encoding.
 */

const C_ESCAPES: Record<number, string> = { 0x07: '\\a', 0x08: '\\b', 0x09: '\\t', 0x0a: '\\n', 0x0b: '\\v', 0x0c: '\\f', 0x0d: '\\r' };

/** Whether the bytes print safely as they are: valid UTF-8 with no C0/C1 control or DEL. */
export function isPrintable(raw: Buffer): boolean {
  const s = raw.toString('utf8');
  if (!Buffer.from(s, 'utf8').equals(raw)) return false;
  return !/[\u0000-\u001f\u007f-\u009f]/u.test(s);
}

/** GNU ls -b's escaping of a name's bytes. */
export function escapeBytes(raw: Buffer): string {
  let out = '';
  let i = 0;
  while (i < raw.length) {
    const b = raw[i];
    const len = utf8SequenceLength(raw, i);
    if (len > 1) {
      const ch = raw.toString('utf8', i, i + len);
      const cp = ch.codePointAt(0) as number;
      // C1 controls are two bytes in UTF-8 and just as dangerous to a terminal.
      out += cp >= 0x80 && cp <= 0x9f ? [...raw.subarray(i, i + len)].map(octal).join('') : ch;
      i += len;
      continue;
    }
    if (b === 0x5c) out += '\\\\';
    else if (C_ESCAPES[b]) out += C_ESCAPES[b];
    else if (b < 0x20 || b === 0x7f || b >= 0x80) out += octal(b);
    else out += String.fromCharCode(b);
    i++;
  }
  return out;
}

function octal(b: number): string {
  return `\\${b.toString(8).padStart(3, '0')}`;
}

/** The length of the valid UTF-8 sequence at `i` (1 for ASCII; 0 for an invalid byte). */
function utf8SequenceLength(raw: Buffer, i: number): number {
  const b = raw[i];
  if (b < 0x80) return 1;
  const n = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b <= 0xdf ? 2 : 0;
  if (n === 0 || i + n > raw.length) return 0;
  for (let k = 1; k < n; k++) if ((raw[i + k] & 0xc0) !== 0x80) return 0;
  const s = raw.toString('utf8', i, i + n);
  return Buffer.from(s, 'utf8').equals(raw.subarray(i, i + n)) ? n : 0;
}

/** A name or path for text output: as it is when printable, else escaped. */
export function displayName(raw: Buffer | string): string {
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
  return isPrintable(bytes) ? bytes.toString('utf8') : escapeBytes(bytes);
}

/** JSON fields for a name: `name` decoded, and `rawName` (hex) when the bytes are not its UTF-8. */
export function jsonName(raw: Buffer, decoded: string, key = 'name'): Record<string, string> {
  const out: Record<string, string> = { [key]: decoded };
  if (!Buffer.from(decoded, 'utf8').equals(raw)) out[`${key}Hex`] = raw.toString('hex');
  return out;
}

/** A guest-controlled string (label, hostname, log line) for a terminal or a pipe: control characters escaped. */
export function safeText(s: string): string {
  return /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/u.test(s) ? escapeBytes(Buffer.from(s, 'utf8')).replace(/\\t/g, '\t') : s;
}
