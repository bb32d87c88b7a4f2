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
import { GuestlensError } from '@guestlens/block';

export type Qcow2ErrorKind =
  /** Not a readable image at all: bad magic, truncated header, impossible header fields. */
  | 'format'
  /** Metadata that contradicts itself or the file: unaligned or out-of-file offsets, undecodable compressed data. */
  | 'corrupt'
  /** A valid image using something guestlens does not read: encryption, unknown features, network backing files, a format without a reader. */
  | 'unsupported'
  /** The backing chain or external data file cannot or may not be followed. */
  | 'chain'
  /** A request beyond the reader's limits. */
  | 'limit';

const CODES: Record<Qcow2ErrorKind, string> = {
  format: 'EIMAGEFORMAT',
  corrupt: 'EFSCORRUPTED',
  unsupported: 'EOPNOTSUPP',
  chain: 'EIMAGECHAIN',
  limit: 'EFBIG',
};

export class Qcow2Error extends GuestlensError {
  constructor(
    readonly kind: Qcow2ErrorKind,
    /** The image (path as opened) whose structure is at fault. */
    readonly image: string,
    /** What failed, without the image name. */
    readonly detail: string,
    /** Byte offset in the image file (or for chain errors, undefined). */
    readonly offset?: number,
    options: { retryable?: boolean; hint?: string; message?: string } = {},
  ) {
    super(CODES[kind], options.message ?? formatMessage(image, detail, offset, options.hint), {
      retryable: options.retryable ?? false,
      data: { kind, image, detail, ...(offset === undefined ? {} : { offset }) },
    });
  }
}

function formatMessage(image: string, detail: string, offset: number | undefined, hint: string | undefined): string {
  const where = offset === undefined ? '' : ` (at offset ${offset}, 0x${offset.toString(16)})`;
  return `${image}: ${detail}${where}${hint ? `; ${hint}` : ''}`;
}

export function formatError(image: string, detail: string, offset?: number, hint?: string): Qcow2Error {
  return new Qcow2Error('format', image, detail, offset, { hint });
}

/**
 * Metadata inconsistent with itself or the file. Retryable: a live image may
 * have been read mid-update. Whether it is live is the caller's to judge (the
 * guest layer asks the locking probe), so the message does not guess.
 */
export function corruptError(image: string, detail: string, offset?: number): Qcow2Error {
  return new Qcow2Error('corrupt', image, detail, offset, { retryable: true, hint: 'the image is corrupt, or was changed while it was read' });
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

/** A 64-bit offset or size field as a JS number, or a format error naming the field (at `fieldOffset` in the file). */
export function toSafeOffset(value: bigint, image: string, what: string, fieldOffset?: number): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw formatError(image, `${what} is ${value}, beyond what guestlens supports (2^53)`, fieldOffset);
  return Number(value);
}
