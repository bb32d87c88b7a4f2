/**
 * The checksums ext4 and jbd2 use: CRC32C is shared by every filesystem
 * (../crc32c.ts); CRC16 is the old uninit_bg/gdt_csum group-descriptor
 * checksum, ext's alone.
 */
import { makeCrcTable } from '../crc32c.ts';

export { crc32c, crc32cBe32, crc32cLe32 } from '../crc32c.ts';

const crc16Table = makeCrcTable(0xa001, 16);
/** CRC16 (ANSI, reflected poly 0x8005) as lib/crc16.c: the old uninit_bg/gdt_csum group-descriptor checksum. */
export function crc16(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  let c = crc & 0xffff;
  for (let i = start; i < end; i++) c = (crc16Table[(c ^ data[i]) & 0xff] ^ (c >>> 8)) & 0xffff;
  return c;
}
