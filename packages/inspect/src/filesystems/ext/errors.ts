/**
 * Typed errors of the ext2/3/4 driver. Every one names the image (the block
 * source's name), the on-disk structure and where it lives, so a user can tell
 * a corrupt image from a bug. `code` follows errno names where one fits, so the
 * guest layer can map them (ENOTDIR, EISDIR, EINVAL...).
 */

export type ExtErrorCode =
  | 'EFSCORRUPTED' // a structure is inconsistent
  | 'EFSBADCRC' // a metadata checksum does not match
  | 'EOPNOTSUPP' // a feature we do not read
  | 'ENOTDIR'
  | 'EISDIR'
  | 'EINVAL'
  | 'ENOENT'
  | 'EFBIG'; // a request over our allocation bound

export class ExtError extends Error {
  readonly userFacing = true;
  readonly retryable: boolean;
  constructor(
    readonly code: ExtErrorCode,
    readonly image: string,
    message: string,
    options: { retryable?: boolean } = {},
  ) {
    super(`${image}: ${message}`);
    this.name = 'ExtError';
    this.retryable = options.retryable ?? false;
  }
}

/** An on-disk structure that cannot be right. `structure` names it ("superblock", "inode 12", "extent block 4711"). */
export class ExtCorruptError extends ExtError {
  constructor(
    image: string,
    readonly structure: string,
    readonly offset: number | undefined,
    detail: string,
    options: { retryable?: boolean } = {},
  ) {
    super(
      'EFSCORRUPTED',
      image,
      `ext filesystem is corrupt: ${structure}${offset !== undefined ? ` (byte offset ${offset})` : ''}: ${detail}. ` +
        `Check it with e2fsck -n on a copy${options.retryable ? ', or retry: a running guest may have been writing it' : ''}.`,
      options,
    );
    this.name = 'ExtCorruptError';
  }
}

/** A metadata_csum / gdt_csum / jbd2 checksum mismatch. Retryable when the image is live (torn writes). */
export class ExtChecksumError extends ExtError {
  constructor(
    image: string,
    readonly structure: string,
    readonly offset: number | undefined,
    readonly expected: number,
    readonly found: number,
    options: { retryable?: boolean } = {},
  ) {
    super(
      'EFSBADCRC',
      image,
      `checksum mismatch in ${structure}${offset !== undefined ? ` (byte offset ${offset})` : ''}: ` +
        `stored 0x${found.toString(16)}, computed 0x${expected.toString(16)}` +
        (options.retryable ? '; the guest may be writing it right now, retry' : '; the image is damaged (e2fsck -n on a copy tells more)'),
      options,
    );
    this.name = 'ExtChecksumError';
  }
}

/** A feature this reader does not implement (compression, an external journal that needs replay...). */
export class ExtUnsupportedError extends ExtError {
  constructor(
    image: string,
    readonly feature: string,
    detail = '',
  ) {
    super('EOPNOTSUPP', image, `ext filesystem uses ${feature}, which guestlens cannot read${detail ? `: ${detail}` : ''}`);
    this.name = 'ExtUnsupportedError';
  }
}
