/**
 * Microsoft GUIDs as stored on disk (VHDX, VDI): the first three fields
 * little-endian, the last eight bytes as they are.
 */

/** The 16 on-disk bytes of a GUID written "2DC27766-F623-4200-9D64-115E9BFD4A08". */
export function guidBytes(text: string): Buffer {
  const hex = text.replace(/[{}-]/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a GUID: ${text}`);
  const b = Buffer.from(hex, 'hex');
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return b;
}

/** The usual text form (lower case, no braces) of the GUID stored at `at`. */
export function guidString(buf: Buffer, at = 0): string {
  const b = Buffer.from(buf.subarray(at, at + 16));
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function isNullGuid(buf: Buffer, at = 0): boolean {
  for (let i = 0; i < 16; i++) if (buf[at + i] !== 0) return false;
  return true;
}
