/**
 * What goes wrong when reading an image, as typed errors the CLI shows
 * without a stack: which image, which offset (in the image file, where the
 * bad structure lives), what was wrong, and what the user can do.
 *
 * `retryable` is true where the cause may be a live image caught half-way
 * through an update by the QEMU writing it (L2 entries pointing at clusters
 * not written yet, a table read while being rewritten): calling `refresh()`
 * and reading again may succeed. Header-level problems are never retryable.
 */

export type Qcow2ErrorKind =
  /** Not a readable image at all: bad magic, truncated header, impossible header fields. */
  | 'format'
  /** Metadata that contradicts itself or the file: unaligned or out-of-file offsets, undecodable compressed data. */
  | 'corrupt'
  /** A valid image using something guestlens does not read: encryption, unknown features, network backing files. */
  | 'unsupported'
  /** The backing chain or external data file cannot or may not be followed. */
  | 'chain'
  /** A request beyond the reader's limits. */
  | 'limit';

export class Qcow2Error extends Error {
  readonly userFacing = true;
  readonly retryable: boolean;
  constructor(
    readonly kind: Qcow2ErrorKind,
    /** The image (path as opened) whose structure is at fault. */
    readonly image: string,
    /** What failed, without the image name. */
    readonly detail: string,
    /** Byte offset in the image file (or for chain errors, undefined). */
    readonly offset?: number,
    options: { retryable?: boolean; hint?: string } = {},
  ) {
    super(formatMessage(image, detail, offset, options.hint));
    this.name = 'Qcow2Error';
    this.retryable = options.retryable ?? false;
  }
}

function formatMessage(image: string, detail: string, offset: number | undefined, hint: string | undefined): string {
  const where = offset === undefined ? '' : ` (at offset ${offset}, 0x${offset.toString(16)})`;
  return `${image}: ${detail}${where}${hint ? `; ${hint}` : ''}`;
}

export function formatError(image: string, detail: string, offset?: number, hint?: string): Qcow2Error {
  return new Qcow2Error('format', image, detail, offset, { hint });
}

const CORRUPT_HINT = 'the image is corrupt, or a running VM is changing it (refresh and read again)';

/** Metadata inconsistent with itself or the file. Retryable: a live image may have been read mid-update. */
export function corruptError(image: string, detail: string, offset?: number): Qcow2Error {
  return new Qcow2Error('corrupt', image, detail, offset, { retryable: true, hint: CORRUPT_HINT });
}

export function unsupportedError(image: string, detail: string, offset?: number, hint?: string): Qcow2Error {
  return new Qcow2Error('unsupported', image, detail, offset, { hint });
}

export function chainError(image: string, detail: string, hint?: string): Qcow2Error {
  return new Qcow2Error('chain', image, detail, undefined, { hint });
}

export function limitError(image: string, detail: string, hint?: string): Qcow2Error {
  return new Qcow2Error('limit', image, detail, undefined, { hint });
}

export function isQcow2Error(err: unknown): err is Qcow2Error {
  return err instanceof Qcow2Error;
}
