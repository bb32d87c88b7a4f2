/**
 * The btrfs driver's errors: the shared filesystem error family
 * (../errors.ts), worded in btrfs's terms. `FilesystemError` is the base of
 * every one, so callers test `code` (EFSCORRUPTED, EFSBADCRC, EOPNOTSUPP...).
 */
import { FilesystemChecksumError, FilesystemCorruptError, FilesystemUnsupportedError } from '../errors.ts';

export { FilesystemError as BtrfsError } from '../errors.ts';

const CHECK = 'Check it with btrfs check --readonly on a copy';

/** An on-disk structure that cannot be right. `structure` names it ("superblock", "tree block 30490624", "chunk item 22020096"). */
export class BtrfsCorruptError extends FilesystemCorruptError {
  constructor(image: string, structure: string, offset: number | undefined, detail: string, options: { retryable?: boolean } = {}) {
    super(image, structure, offset, detail, { ...options, wording: 'btrfs filesystem is corrupt', fsck: CHECK });
  }
}

/** A superblock, tree-block or data checksum mismatch. Retryable when the image is live (torn writes). */
export class BtrfsChecksumError extends FilesystemChecksumError {
  constructor(image: string, structure: string, offset: number | undefined, expected: number, found: number, options: { retryable?: boolean } = {}) {
    super(image, structure, offset, expected, found, { ...options, fsck: 'btrfs check --readonly on a copy' });
  }
}

/** A feature this reader does not implement (a RAID profile over a missing device, extent-tree-v2, ...). */
export class BtrfsUnsupportedError extends FilesystemUnsupportedError {
  constructor(image: string, feature: string, detail = '') {
    super(image, feature, detail, 'btrfs filesystem');
  }
}
