/**
 * Everything that can go wrong talking NBD or running qemu-storage-daemon,
 * as typed errors whose message names the image (or socket), what failed and
 * what the user can do. All extend GuestlensError; only NbdClosedError after
 * close() and internal bugs are not user mistakes.
 */
import { GuestlensError, type GuestlensErrorOptions } from '@guestlens/block';

/** Base class of every error of this package. */
export class NbdError extends GuestlensError {
  constructor(code: string, message: string, options: GuestlensErrorOptions = {}) {
    super(code, message, options);
  }
}

/** The server broke the protocol: wrong magic, a length we did not ask for, an unknown cookie. The connection is dropped. */
export class NbdProtocolError extends NbdError {
  constructor(
    readonly source: string,
    readonly reason: string,
  ) {
    super('EPROTO', `${source}: NBD protocol error: ${reason}; the server is not a (working) NBD server, the connection was closed`, {
      data: { source, reason },
    });
  }
}

/** Names of the option-reply errors (NBD_REP_ERR_*), with what each means for us. */
const REP_ERRORS: Record<number, [string, string]> = {
  1: ['UNSUP', 'the server does not support this option'],
  2: ['POLICY', 'the server refused it by policy'],
  3: ['INVALID', 'the server found the request invalid'],
  4: ['PLATFORM', 'the server platform does not support it'],
  5: ['TLS_REQD', 'the server requires TLS, which guestlens does not speak'],
  6: ['UNKNOWN', 'the server has no export of that name'],
  7: ['SHUTDOWN', 'the server is shutting down'],
  8: ['BLOCK_SIZE_REQD', 'the server requires block size negotiation'],
  9: ['TOO_BIG', 'the request was too big for the server'],
  10: ['EXT_HEADER_REQD', 'the server requires extended headers, which guestlens does not speak'],
};

/** An option of the handshake was refused (NBD_REP_ERR_*). */
export class NbdOptionError extends NbdError {
  constructor(
    readonly source: string,
    readonly option: string,
    readonly replyType: number,
    readonly serverMessage: string,
  ) {
    const low = replyType & 0x7fffffff;
    const [name, meaning] = REP_ERRORS[low] ?? [`${low}`, 'the server gave an error this client does not know'];
    super('ENBDOPT', `${source}: NBD option ${option} failed (NBD_REP_ERR_${name}): ${meaning}${serverMessage ? `: ${serverMessage}` : ''}`, {
      data: { source, option, error: `NBD_REP_ERR_${name}`, serverMessage },
    });
  }
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM', 5: 'EIO', 12: 'ENOMEM', 22: 'EINVAL', 28: 'ENOSPC', 75: 'EOVERFLOW', 95: 'ENOTSUP', 108: 'ESHUTDOWN',
};

/** The server answered a command with an error (an I/O error of the image under it, usually). */
export class NbdCommandError extends NbdError {
  constructor(
    readonly source: string,
    readonly command: string,
    readonly offset: number,
    readonly length: number,
    readonly errno: number,
    readonly serverMessage = '',
  ) {
    const name = ERRNO_NAMES[errno] ?? `error ${errno}`;
    super(ERRNO_NAMES[errno] ?? 'EIO', `${source}: NBD ${command} of ${length} bytes at offset ${offset} failed on the server: ${name}${serverMessage ? ` (${serverMessage})` : ''}`, {
      retryable: errno === 5,
      data: { source, command, offset, length, errno, serverMessage },
    });
  }
}

/** The connection could not be made, or went away. */
export class NbdConnectionError extends NbdError {
  constructor(
    readonly source: string,
    reason: string,
    hint = '',
  ) {
    super('ECONNRESET', `${source}: ${reason}${hint ? `; ${hint}` : ''}`, { data: { source, reason } });
  }
}

/** The server did not finish the handshake in time. */
export class NbdTimeoutError extends NbdError {
  constructor(
    readonly source: string,
    what: string,
    ms: number,
  ) {
    super('ETIMEDOUT', `${source}: ${what} did not complete within ${ms} ms; the server is hung or is not an NBD server`, { data: { source, ms } });
  }
}

/** Used after close(). */
export class NbdClosedError extends NbdError {
  constructor(readonly source: string) {
    super('EBADF', `${source}: the NBD connection is closed`, { userFacing: false });
  }
}

/** qemu-storage-daemon or qemu-img could not be run, or failed. */
export class QemuDaemonError extends NbdError {
  constructor(
    readonly image: string,
    message: string,
    code = 'EQEMU',
    data: Record<string, unknown> = {},
  ) {
    super(code, `${image}: ${message}`, { data: { image, ...data } });
  }
}

/** The LUKS passphrase is wrong (or missing). */
export class PassphraseError extends QemuDaemonError {
  constructor(image: string, message: string) {
    super(image, message, 'EKEYREJECTED');
  }
}

/** The image is missing, unreadable, or not a file QEMU can open. */
export class ImageAccessError extends QemuDaemonError {
  constructor(image: string, reason: string, code = 'ENOENT') {
    super(image, reason, code);
  }
}
