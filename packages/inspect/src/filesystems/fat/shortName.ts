/**
 * 8.3 names as Linux's vfat driver shows them (fs/fat/dir.c
 * fat_parse_short, with the defaults of a Debian kernel: codepage 437,
 * utf8, shortname=mixed). Bytes are code page 437, decoded one byte to one
 * character; the base name and the extension each lose their trailing
 * spaces (inner spaces stay), a NUL ends a part early, and the dot appears
 * only when the extension has a character other than a space. Windows NT's
 * case bits (DIR_NTRes) show the base and/or the extension in lower case, with
 * code page 437's own lower-case table (which lowers only the letters whose
 * lower case is also in the code page).
 */
import { KANJI_E5, DELETED_FLAG, NTRES } from './layout.ts';

/** Code page 437, bytes 0x80..0xFF (0x00..0x7F are ASCII, control characters included). */
const CP437_HIGH =
  'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0';

/** Code page 437's lower-case table where it differs from identity above 0x7F (the kernel's nls_cp437 charset2lower). */
const CP437_LOWER_HIGH: ReadonlyMap<number, number> = new Map([
  [0x80, 0x87], // Ç ç
  [0x8e, 0x84], // Ä ä
  [0x8f, 0x86], // Å å
  [0x90, 0x82], // É é
  [0x92, 0x91], // Æ æ
  [0x99, 0x94], // Ö ö
  [0x9a, 0x81], // Ü ü
  [0xa5, 0xa4], // Ñ ñ
  [0xe4, 0xe5], // Σ σ
  [0xe8, 0xed], // Φ φ
]);

if (CP437_HIGH.length !== 128) throw new Error('code page 437 table must have 128 characters');

/** One code page 437 byte as a character. */
export function cp437Char(byte: number): string {
  return byte < 0x80 ? String.fromCharCode(byte) : CP437_HIGH[byte - 0x80];
}

function cp437Lower(byte: number): number {
  if (byte >= 0x41 && byte <= 0x5a) return byte + 0x20;
  return CP437_LOWER_HIGH.get(byte) ?? byte;
}

/** Bytes as code page 437 text. */
export function cp437String(bytes: Buffer): string {
  let s = '';
  for (const b of bytes) s += cp437Char(b);
  return s;
}

/** The name readdir shows for an 11-byte 8.3 name with case bits `ntRes`; '' when nothing is left (the kernel skips such an entry). */
export function shortNameText(name11: Buffer, ntRes: number): string {
  const work = Buffer.from(name11.subarray(0, 11));
  // 0x05 stands for a first byte of 0xE5, which in DIR_Name[0] would mean "deleted".
  if (work[0] === KANJI_E5) work[0] = DELETED_FLAG;
  const part = (from: number, to: number, lower: boolean): string => {
    let text = '';
    let kept = 0;
    for (let i = from; i < to; i++) {
      const c = work[i];
      if (c === 0) break;
      text += cp437Char(lower ? cp437Lower(c) : c);
      if (c !== 0x20) kept = text.length;
    }
    return text.slice(0, kept);
  };
  const base = part(0, 8, (ntRes & NTRES.LOWER_BASE) !== 0);
  const ext = part(8, 11, (ntRes & NTRES.LOWER_EXT) !== 0);
  return ext ? `${base}.${ext}` : base;
}

/** The checksum of an 8.3 name that its long-name slots carry (over the bytes as stored). */
export function shortNameChecksum(name11: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + name11[i]) & 0xff;
  return sum;
}
