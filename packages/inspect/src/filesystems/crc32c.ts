/**
 * CRC32C lives in @guestlens/block (the image formats need it too, and
 * qcow2-js must not depend on inspect); filesystem drivers keep importing it
 * from here.
 */
export { crc32c, crc32cBe32, crc32cLe32, crc32cStandard, makeCrcTable } from '@guestlens/block';
