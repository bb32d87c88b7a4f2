/**
 * The NTFS driver's errors: the shared filesystem error family
 * (../errors.ts), worded in NTFS's terms. `NtfsError` is the family's base
 * under NTFS's name, so `err instanceof NtfsError` holds for every driver
 * error whatever its subclass.
 */
import { FilesystemChecksumError, FilesystemCorruptError, FilesystemError, FilesystemUnsupportedError } from '../errors.ts';

export { FilesystemError as NtfsError };

/** ntfsfix only reports with -n (--no-action); chkdsk is the real repair tool. */
const FSCK = 'Check it with ntfsfix -n (or chkdsk on Windows) on a copy';

/** An on-disk structure that cannot be right. `structure` names it ("boot sector", "MFT record 12", "index block 3 of directory 5"). */
export class NtfsCorruptError extends FilesystemCorruptError {
  constructor(image: string, structure: string, offset: number | undefined, detail: string, options: { retryable?: boolean } = {}) {
    super(image, structure, offset, detail, { ...options, wording: 'NTFS filesystem is corrupt', fsck: FSCK });
  }
}

/**
 * An update sequence (multi-sector transfer) mismatch: a sector of a record
 * was not written with the rest (a torn write, or damage). NTFS's only
 * metadata check, so it is the family's checksum error.
 */
export class NtfsFixupError extends FilesystemChecksumError {
  constructor(image: string, structure: string, offset: number | undefined, expected: number, found: number, options: { retryable?: boolean } = {}) {
    super(image, structure, offset, expected, found, { ...options, fsck: 'ntfsfix -n on a copy' });
  }
}

/** A feature this reader does not implement (EFS encryption, ...). */
export class NtfsUnsupportedError extends FilesystemUnsupportedError {
  constructor(image: string, feature: string, detail = '') {
    super(image, feature, detail, 'NTFS filesystem');
  }
}
