/**
 * The journal reader's errors: one family on the guestlens error base. Every
 * message names the file (as the caller named its BlockSource), the
 * structure and the byte offset.
 *
 * A structure that does not hold together in a file that is still being
 * written (state ONLINE) may be a read caught half-way through an append:
 * with `live: true` such errors are `retryable` (refresh, read again).
 */
import { GuestlensError } from '@guestlens/block';

export interface JournalErrorData extends Record<string, unknown> {
  file?: string;
  offset?: number;
}

export class JournalError extends GuestlensError {
  constructor(code: string, message: string, options: { data?: JournalErrorData; retryable?: boolean; cause?: unknown; userFacing?: boolean } = {}) {
    super(code, message, options);
  }
}

/** A structure that is not what the format allows: bad magic, bad size, an offset outside the file, a loop. */
export class JournalCorruptError extends JournalError {
  constructor(file: string, what: string, offset: number | undefined, retryable: boolean, data: Record<string, unknown> = {}) {
    super('EBADMSG', `${file}: ${what}${offset === undefined ? '' : ` (at byte ${offset})`}${retryable ? '; the file is being written, so this may be an append caught half-way' : ''}`, {
      data: { file, offset, ...data },
      retryable,
    });
  }
}

/** The header says the file is longer than it is: cut short while copying, or not yet extended by the writer. */
export class JournalTruncatedError extends JournalError {
  constructor(file: string, needed: number, size: number, retryable: boolean) {
    super('ENODATA', `${file}: the journal header describes ${needed} bytes but the file has ${size}; it was cut short (copy it again, or read it where it was written)`, {
      data: { file, needed, size },
      retryable,
    });
  }
}

/** A feature a reader must understand (an incompatible flag) that we do not know. */
export class JournalUnsupportedError extends JournalError {
  constructor(file: string, what: string, data: Record<string, unknown> = {}) {
    super('EPROTONOSUPPORT', `${file}: ${what}; guestlens cannot read this journal file`, { data: { file, ...data } });
  }
}

/** A DATA object whose payload does not decompress, or decompresses to more than the configured limit. */
export class JournalDecompressError extends JournalError {
  constructor(file: string, offset: number, algorithm: string, reason: string, code = 'EBADMSG') {
    super(code, `${file}: ${algorithm}-compressed DATA object at byte ${offset}: ${reason}`, { data: { file, offset, algorithm } });
  }
}

/** A filter or option the user gave that cannot be applied (a bad match, an unknown priority, a boot not in the journal). */
export class JournalQueryError extends JournalError {
  constructor(code: string, message: string, data: Record<string, unknown> = {}) {
    super(code, message, { data });
  }
}
