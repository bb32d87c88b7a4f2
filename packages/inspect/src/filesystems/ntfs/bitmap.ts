/**
 * Counting free bits in $Bitmap (one bit per cluster) and $MFT's $BITMAP
 * (one per record), as ntfs-3g counts them: every zero bit of the
 * attribute's data, read in pieces so a large volume's bitmap is never held
 * whole.
 */

const ZEROS = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let z = 0;
  for (let b = 0; b < 8; b++) if (!(i & (1 << b))) z++;
  ZEROS[i] = z;
}

export function zeroBits(buf: Buffer): number {
  let n = 0;
  for (let i = 0; i < buf.length; i++) n += ZEROS[buf[i]];
  return n;
}

/** Zero bits of a `size`-byte stream read through `read`, `chunk` bytes at a time. */
export async function countZeroBits(read: (offset: number, length: number) => Promise<Buffer>, size: number, chunk = 1024 * 1024): Promise<number> {
  let free = 0;
  for (let off = 0; off < size; off += chunk) free += zeroBits(await read(off, Math.min(chunk, size - off)));
  return free;
}
