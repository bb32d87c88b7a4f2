/**
 * GUIDs as GPT and most filesystems store them: the first three fields
 * little-endian, the rest in byte order ("mixed-endian"), printed upper case
 * the way sgdisk and sfdisk show GPT GUIDs.
 */
export function formatGuid(bytes: Buffer): string {
  const hex = (b: Buffer) => b.toString('hex');
  const le = (start: number, len: number) => hex(Buffer.from(bytes.subarray(start, start + len)).reverse());
  return `${le(0, 4)}-${le(4, 2)}-${le(6, 2)}-${hex(bytes.subarray(8, 10))}-${hex(bytes.subarray(10, 16))}`.toUpperCase();
}

export function isZeroGuid(bytes: Buffer): boolean {
  for (let i = 0; i < 16; i++) if (bytes[i] !== 0) return false;
  return true;
}
