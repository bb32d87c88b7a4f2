/**
 * Everything that can go wrong making an overlay, as typed errors whose
 * message says what failed, for which image, and what the user can do.
 * A refusal by the backing policy is the reader's BackingRefusedError (one
 * policy, one error), re-exported here.
 */
import { GuestlensError } from '@guestlens/block';

export { BackingRefusedError } from '@guestlens/qcow2-js';

/** Base class: every overlay error is meant for the user, not a bug report. */
export class OverlayError extends GuestlensError {
  constructor(message: string, code = 'EOVERLAY') {
    super(code, message);
  }
}

/** qemu-img is not installed (or not on PATH). */
export class QemuImgMissingError extends OverlayError {
  constructor(readonly command: string) {
    super(`${command} was not found on PATH; guestlens needs it to make overlays: install the Debian package qemu-utils (apt-get install qemu-utils)`);
  }
}

/** qemu-img predates the file driver's `locking` option (QEMU 2.10). */
export class QemuImgTooOldError extends OverlayError {
  constructor(readonly version: string) {
    super(`qemu-img ${version} is too old: overlays over running VMs' disks need the "locking" option of QEMU 2.10 or later; install a newer qemu-utils`);
  }
}

/** qemu-img ran but failed; its own message is kept. */
export class QemuImgError extends OverlayError {
  constructor(
    readonly what: string,
    readonly image: string,
    readonly stderr: string,
  ) {
    super(`${image}: ${what} failed: ${stderr.trim().replace(/^qemu-img: /gm, '') || 'qemu-img gave no reason'}`);
  }
}

/** The image itself cannot be used: missing, unreadable, a directory, a FIFO. */
export class ImageAccessError extends OverlayError {
  constructor(
    readonly image: string,
    readonly reason: string,
    hint = '',
  ) {
    super(`${image}: ${reason}${hint ? `; ${hint}` : ''}`);
  }
}

/** The image is in a format guestlens recognises and has no reader for (qed, parallels, ...): an overlay over it could not be read. */
export class UnreadableFormatError extends ImageAccessError {
  constructor(
    image: string,
    readonly format: string,
    /** What the format table says it is ("a QED image; guestlens has no reader ..."). */
    readonly description: string,
  ) {
    super(image, `is ${description}`);
  }
}

/** A format name guestlens does not handle. */
export class UnsupportedFormatError extends OverlayError {
  constructor(
    readonly image: string,
    readonly format: string,
    supported: readonly string[],
  ) {
    super(`${image}: format "${format}" is not supported; use one of ${supported.join(', ')}`);
  }
}

/** The format the user named does not match the image's header. */
export class FormatMismatchError extends OverlayError {
  constructor(
    readonly image: string,
    readonly given: string,
    readonly found: string,
  ) {
    super(
      `${image}: --format ${given} was given, but the image's header is ${found === 'raw' ? 'not that of any known format (it looks raw)' : `that of ${found}`}; ` +
        `give --format ${found}, or leave --format out to use what the header says`,
    );
  }
}

/** The backing chain cannot be followed: a missing file, a loop, absurd depth, a reference we cannot resolve. */
export class BackingChainError extends OverlayError {
  constructor(
    readonly image: string,
    reason: string,
  ) {
    super(`${image}: ${reason}`);
  }
}

/** The private temporary directory cannot be created. */
export class TempDirError extends OverlayError {
  constructor(
    readonly parent: string,
    reason: string,
  ) {
    super(`cannot create the overlay's private directory in ${parent}: ${reason}; point TMPDIR (or --dir) at a writable directory`);
  }
}
