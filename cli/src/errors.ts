/**
 * Exit codes and how errors reach the user.
 *  0 ok, 1 error, 2 usage error, 3 partial result.
 * A user mistake (missing file, locked image, corrupt structure) prints one
 * clear message; only a bug in guestlens prints a stack trace.
 */
import { GuestlensError } from '@guestlens/block';

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;
export const EXIT_PARTIAL = 3;

/** Wrong or missing arguments: exit 2 with a hint to --help. */
export class UsageError extends GuestlensError {
  constructor(message: string) {
    super('EUSAGE', message);
  }
}

/** Errors from any package that carry `userFacing = true`, or Node's own system errors about a path. */
export function isUserError(err: unknown): err is Error {
  if (!(err instanceof Error)) return false;
  if ((err as { userFacing?: unknown }).userFacing === true) return true;
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) && 'syscall' in err;
}

const systemReasons: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'a path component is not a directory',
  ELOOP: 'too many levels of symbolic links',
  ENXIO: 'no such device or address',
  EROFS: 'read-only file system',
};

export function describeError(err: Error): string {
  const e = err as NodeJS.ErrnoException;
  if (e.syscall && e.code && !(err as { userFacing?: unknown }).userFacing) {
    const reason = systemReasons[e.code] ?? e.code;
    return e.path ? `${e.path}: ${reason} (${e.syscall})` : `${e.syscall}: ${reason}`;
  }
  return err.message;
}
