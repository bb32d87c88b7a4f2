/**
 * The one error family of every filesystem driver (ext, xfs, fat, ntfs,
 * btrfs): errno-like codes, the image (the block source's name) and, for
 * damage, the structure and byte offset at fault, so a user can tell a
 * corrupt image from a bug. Drivers subclass these only to word a message
 * in their format's terms; the guest layer and the commands test `code`.
 *
 * `detail` is the message without the image name, for reports that already
 * name the image and device ("guest.qcow2: /dev/sda2: <detail>").
 *
 * Damage is `retryable` when the driver was opened in live mode: the image
 * may have been read while its guest was writing it. Whether that is so is
 * the guest layer's to judge (it knows who holds the image), so messages here
 * never tell the user to retry.
 */
import { InspectError } from '../errors.ts';

export type FilesystemErrorCode =
  | 'EFSCORRUPTED' // a structure is inconsistent
  | 'EFSBADCRC' // a metadata checksum does not match
  | 'EOPNOTSUPP' // a feature the driver does not read
  | 'ENOTDIR'
  | 'EISDIR'
  | 'EINVAL'
  | 'ENOENT'
  | 'ENODATA' // no such extended attribute
  | 'EOVERFLOW' // a value (inode number, size) beyond 2^53
  | 'EFBIG'; // a request over our allocation bound

export class FilesystemError extends InspectError {
  declare readonly code: FilesystemErrorCode;
  constructor(
    code: FilesystemErrorCode,
    /** The block source the filesystem is on. */
    readonly image: string,
    /** What failed, without the image name. */
    readonly detail: string,
    options: { retryable?: boolean; data?: Record<string, unknown> } = {},
  ) {
    super(`${image}: ${detail}`, code, { retryable: options.retryable ?? false, data: { image, ...options.data } });
  }
}

/** An on-disk structure that cannot be right. `structure` names it ("superblock", "inode 12", "AGF 3"). */
export class FilesystemCorruptError extends FilesystemError {
  constructor(
    image: string,
    readonly structure: string,
    readonly offset: number | undefined,
    reason: string,
    options: { retryable?: boolean; wording?: string; fsck?: string } = {},
  ) {
    super(
      'EFSCORRUPTED',
      image,
      `${options.wording ?? 'filesystem is corrupt'}: ${structure}${offset !== undefined ? ` (byte offset ${offset})` : ''}: ${reason}. ${options.fsck ?? 'Check it with fsck -n on a copy'}.`,
      { retryable: options.retryable, data: { structure, ...(offset === undefined ? {} : { offset }), reason } },
    );
  }
}

/** A metadata checksum mismatch. */
export class FilesystemChecksumError extends FilesystemError {
  constructor(
    image: string,
    readonly structure: string,
    readonly offset: number | undefined,
    readonly expected: number,
    readonly found: number,
    options: { retryable?: boolean; fsck?: string } = {},
  ) {
    super(
      'EFSBADCRC',
      image,
      `checksum mismatch in ${structure}${offset !== undefined ? ` (byte offset ${offset})` : ''}: stored 0x${found.toString(16)}, computed 0x${expected.toString(16)}; ` +
        `the image is damaged, or was changed while it was read (${options.fsck ?? 'fsck -n on a copy'} tells more)`,
      { retryable: options.retryable, data: { structure, ...(offset === undefined ? {} : { offset }), stored: found, computed: expected } },
    );
  }
}

/** A feature the driver does not implement. */
export class FilesystemUnsupportedError extends FilesystemError {
  constructor(
    image: string,
    readonly feature: string,
    detail = '',
    fsName = 'filesystem',
  ) {
    super('EOPNOTSUPP', image, `${fsName} uses ${feature}, which guestlens cannot read${detail ? `: ${detail}` : ''}`, { data: { feature } });
  }
}
