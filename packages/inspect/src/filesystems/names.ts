/**
 * File names as filesystems store them: bytes. Linux filesystems (ext, xfs,
 * btrfs) store any bytes but NUL and '/'; we show them decoded as UTF-8 when
 * they are, and as Latin-1 when they are not (one character per byte, so the
 * name round-trips and stays unique), keeping the raw bytes beside. FAT and
 * NTFS names are UTF-16 and decode exactly.
 */

/** The name readdir shows for `raw`: UTF-8 when valid, else Latin-1. */
export function decodeName(raw: Buffer): string {
  const s = raw.toString('utf8');
  return s.includes('\uFFFD') && !Buffer.from(s, 'utf8').equals(raw) ? raw.toString('latin1') : s;
}

/**
 * The byte strings a looked-up name may be stored as: its UTF-8 bytes, and,
 * for a name readdir showed decoded as Latin-1 (all code points below 256,
 * some above 127), those bytes too.
 */
export function nameCandidates(name: string): Buffer[] {
  const utf8 = Buffer.from(name, 'utf8');
  if (!/[\u0080-\u00ff]/.test(name) || /[^\x00-\xff]/.test(name)) return [utf8];
  const latin1 = Buffer.from(name, 'latin1');
  return latin1.equals(utf8) ? [utf8] : [utf8, latin1];
}
