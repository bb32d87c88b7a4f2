/**
 * The XFS driver's errors: the shared filesystem error family (../errors.ts),
 * worded in XFS's terms and pointing at xfs_repair -n, the tool that can tell
 * more. `XfsError` is the family's base under XFS's name, so
 * `err instanceof XfsError` holds for every driver error.
 */
import {
  FilesystemChecksumError,
  FilesystemCorruptError,
  FilesystemError,
  FilesystemUnsupportedError,
} from '../errors.ts';

export { FilesystemError as XfsError };

const FSCK = 'Check it with xfs_repair -n on a copy';

/** An on-disk structure that cannot be right. `structure` names it ("superblock", "AGF 3", "inode 131", "directory block 2 of inode 128"). */
export class XfsCorruptError extends FilesystemCorruptError {
  constructor(image: string, structure: string, offset: number | undefined, detail: string, options: { retryable?: boolean } = {}) {
    super(image, structure, offset, detail, { ...options, wording: 'XFS filesystem is corrupt', fsck: FSCK });
  }
}

/** A v5 metadata CRC mismatch. Retryable when the image is live (a torn write). */
export class XfsChecksumError extends FilesystemChecksumError {
  constructor(image: string, structure: string, offset: number | undefined, expected: number, found: number, options: { retryable?: boolean } = {}) {
    super(image, structure, offset, expected, found, { ...options, fsck: 'xfs_repair -n on a copy' });
  }
}

/** A feature this reader does not implement (a realtime device, metadata directories, ...). */
export class XfsUnsupportedError extends FilesystemUnsupportedError {
  constructor(image: string, feature: string, detail = '') {
    super(image, feature, detail, 'XFS filesystem');
  }
}
