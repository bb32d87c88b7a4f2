/**
 * The locking package's errors. All are about the user's image or another
 * process's locks, never a bug of ours: `userFacing` (from the GuestlensError
 * base) makes the CLI print the message alone, without a stack.
 */
import { GuestlensError } from '@guestlens/block';
import type { PermissionName } from './permissions.ts';
import type { LockHolder } from './lockRecords.ts';

export class LockingError extends GuestlensError {
  constructor(message: string, code = 'ELOCKING') {
    super(code, message);
  }
}

/**
 * The path does not name something we can probe or lock: missing, a
 * directory, a FIFO, unreadable... `code` is the errno name where the system
 * gave one, else what fits (EISDIR for a directory, EINVAL for an empty path
 * or a file that cannot be an image).
 */
export class ImageOpenError extends LockingError {
  constructor(
    readonly path: string,
    readonly reason: string,
    code = 'EINVAL',
  ) {
    super(`${quotePath(path)}: ${reason}`, code);
  }
}

/**
 * Another process holds a byte that QEMU's check tests. `qemuMessage` is
 * exactly what QEMU prints for the same situation; `message` adds who holds it.
 */
export class LockConflictError extends LockingError {
  constructor(
    readonly path: string,
    readonly qemuMessage: string,
    readonly byte: number,
    readonly permission: PermissionName,
    /** "use": someone uses a permission we refuse to share; "unshare": someone refuses to share one we want. */
    readonly role: 'use' | 'unshare',
    readonly holders: LockHolder[],
  ) {
    super(`${qemuMessage}\n${describeHolders(holders, byte)}`, 'ELOCKCONFLICT');
  }
}

/**
 * A lock call itself failed: QEMU's `Failed to lock byte N`, with no hint
 * line. It happens when someone holds a write lock on the byte (QEMU never
 * takes one; other programs may).
 */
export class LockByteError extends LockingError {
  constructor(
    readonly path: string,
    readonly qemuMessage: string,
    readonly byte: number,
    readonly errno: number,
    readonly holders: LockHolder[] = [],
  ) {
    super(holders.length > 0 ? `${qemuMessage}\n${describeHolders(holders, byte)}` : qemuMessage, 'ELOCKBYTE');
  }

  withHolders(holders: LockHolder[]): LockByteError {
    return new LockByteError(this.path, this.qemuMessage, this.byte, this.errno, holders);
  }
}

/** Quoting that keeps spaces, non-ASCII and control characters unambiguous in one line. */
export function quotePath(path: string): string {
  return /^[\w./+@%:,=-]+$/u.test(path) ? path : JSON.stringify(path);
}

export function holderLabel(h: LockHolder): string {
  if (h.pid === null) return 'a process we cannot see (run as root to name it)';
  return `${h.command ?? 'unknown command'} (pid ${h.pid})`;
}

function describeHolders(holders: LockHolder[], byte: number): string {
  if (holders.length === 0) return `Byte ${byte} is held by a process we cannot see (run as root to name it).`;
  const parts = holders.map((h) => {
    const via = [h.fd === null ? undefined : `fd ${h.fd}`, `${h.kind} lock`].filter(Boolean).join(', ');
    return `${holderLabel(h)} [${via}]`;
  });
  return `Byte ${byte} is held by ${parts.join(', ')}.`;
}
