/**
 * @guestlens/block: the bottom of the stack. The BlockSource interface, windows
 * over a source, range checks and safe numbers, the bounded LRU every cache
 * uses, full reads of host files, CRC32C (filesystems and vhdx), and the error
 * base every package extends.
 */
export { readInto, extents, type BlockSource, type Extent, type ExtentKind } from './blockSource.ts';
export { BlockRangeError, UnsafeNumberError, checkRange, toSafeNumber, DEFAULT_MAX_READ_BYTES } from './range.ts';
export { BlockWindow, WindowBoundsError } from './window.ts';
export { BoundedLru } from './lru.ts';
export { readAt, readAtSync } from './fileReads.ts';
export { crc32c, crc32cBe32, crc32cLe32, crc32cStandard, makeCrcTable } from './crc32c.ts';
export {
  GuestlensError,
  brand,
  errorJson,
  isGuestlensError,
  isRetryable,
  isUserFacing,
  type GuestlensErrorJson,
  type GuestlensErrorOptions,
  type GuestlensErrorShape,
} from './errors.ts';
