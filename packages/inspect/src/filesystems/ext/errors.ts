/**
 * The ext2/3/4 driver's errors: the shared filesystem error family
 * (../errors.ts), worded in ext's terms. `ExtError` is the family's base
 * under ext's name, so `err instanceof ExtError` holds for every driver
 * error whatever its subclass.
 */
import {
  FilesystemChecksumError,
  FilesystemCorruptError,
  FilesystemError,
  FilesystemUnsupportedError,
  type FilesystemErrorCode,
} from '../errors.ts';

export type ExtErrorCode = FilesystemErrorCode;

export { FilesystemError as ExtError };

const FSCK = 'Check it with e2fsck -n on a copy';

/** An on-disk structure that cannot be right. `structure` names it ("superblock", "inode 12", "extent block 4711"). */
export class ExtCorruptError extends FilesystemCorruptError {
  constructor(image: string, structure: string, offset: number | undefined, detail: string, options: { retryable?: boolean } = {}) {
    super(image, structure, offset, detail, { ...options, wording: 'ext filesystem is corrupt', fsck: FSCK });
  }
}

/** A metadata_csum / gdt_csum / jbd2 checksum mismatch. Retryable when the image is live (torn writes). */
export class ExtChecksumError extends FilesystemChecksumError {
  constructor(image: string, structure: string, offset: number | undefined, expected: number, found: number, options: { retryable?: boolean } = {}) {
    super(image, structure, offset, expected, found, { ...options, fsck: 'e2fsck -n on a copy' });
  }
}

/** A feature this reader does not implement (compression, an external journal that needs replay...). */
export class ExtUnsupportedError extends FilesystemUnsupportedError {
  constructor(image: string, feature: string, detail = '') {
    super(image, feature, detail, 'ext filesystem');
  }
}
