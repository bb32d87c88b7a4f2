/**
 * fcntl byte-range locks through koffi: the only system call the locking
 * protocol needs. QEMU uses open file description (OFD) locks and falls back
 * to classic POSIX locks only where the kernel lacks them.
 */
import koffi from 'koffi';
import { openSync, closeSync, constants } from 'node:fs';

// Linux x86-64 and aarch64 (asm-generic) command numbers.
const F_GETLK = 5;
const F_SETLK = 6;
const F_OFD_GETLK = 36;
const F_OFD_SETLK = 37;

export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
const SEEK_SET = 0;

export const EAGAIN = 11;
export const EACCES = 13;

/** Which family of fcntl locks a holder or we use. */
export type LockApi = 'OFD' | 'POSIX';

interface Flock {
  l_type: number;
  l_whence: number;
  l_start: number;
  l_len: number;
  l_pid: number;
}

interface Libc {
  fcntl: (fd: number, cmd: number, lock: Flock) => number;
  strerror: (errno: number) => string;
}

let libc: Libc | undefined;

function loadLibc(): Libc {
  if (libc) return libc;
  if (process.platform !== 'linux') throw new Error(`QEMU image locking needs Linux fcntl locks; this is ${process.platform}`);
  const lib = koffi.load('libc.so.6');
  // glibc's struct flock on 64-bit Linux: short, short, (pad), off_t, off_t, pid_t, (pad).
  const flock = koffi.struct('guestlens_flock', { l_type: 'short', l_whence: 'short', l_start: 'int64', l_len: 'int64', l_pid: 'int' });
  if (koffi.sizeof(flock) !== 32) throw new Error(`unexpected struct flock size ${koffi.sizeof(flock)} (want 32): unsupported platform`);
  libc = {
    fcntl: lib.func('fcntl', 'int', ['int', 'int', koffi.inout(koffi.pointer(flock))]) as Libc['fcntl'],
    strerror: lib.func('strerror', 'str', ['int']) as Libc['strerror'],
  };
  return libc;
}

export class FcntlError extends Error {
  constructor(readonly errno: number, readonly operation: string) {
    super(`${operation}: ${strerror(errno)}`);
    this.name = 'FcntlError';
  }
}

export function strerror(errno: number): string {
  return loadLibc().strerror(errno);
}

function call(fd: number, cmd: number, lock: Flock, operation: string): Flock {
  const { fcntl } = loadLibc();
  if (fcntl(fd, cmd, lock) === -1) throw new FcntlError(koffi.errno(), operation);
  return lock;
}

function oneByte(type: number, byte: number): Flock {
  return { l_type: type, l_whence: SEEK_SET, l_start: byte, l_len: 1, l_pid: 0 };
}

/** Take a read lock on one byte, or drop our lock on it (F_UNLCK). Throws FcntlError (EAGAIN on conflict). */
export function setByteLock(fd: number, api: LockApi, byte: number, type: typeof F_RDLCK | typeof F_UNLCK): void {
  call(fd, api === 'OFD' ? F_OFD_SETLK : F_SETLK, oneByte(type, byte), `${type === F_UNLCK ? 'unlock' : 'lock'} byte ${byte}`);
}

/**
 * Would a write lock on this byte conflict with anybody else's lock? That is
 * QEMU's test. Locks held through the same open file description (OFD) or by
 * this process (POSIX) never conflict with our own test.
 */
export function testByte(fd: number, api: LockApi, byte: number): { conflict: boolean; pid: number } {
  const r = call(fd, api === 'OFD' ? F_OFD_GETLK : F_GETLK, oneByte(F_WRLCK, byte), `test byte ${byte}`);
  return { conflict: r.l_type !== F_UNLCK, pid: r.l_pid };
}

let detected: LockApi | undefined;

/** QEMU's qemu_has_ofd_lock(): an F_OFD_GETLK on /dev/null opened read-write either works or we fall back to POSIX. */
export function detectLockApi(): LockApi {
  if (detected) return detected;
  const fd = openSync('/dev/null', constants.O_RDWR);
  try {
    detected = loadLibc().fcntl(fd, F_OFD_GETLK, oneByte(F_WRLCK, 0)) === -1 ? 'POSIX' : 'OFD';
  } finally {
    closeSync(fd);
  }
  return detected;
}

/** QEMU's two lines when `locking=on` and the kernel has no OFD locks. */
export const POSIX_FALLBACK_WARNING =
  'File lock requested but OFD locking syscall is unavailable, falling back to POSIX file locks\n' +
  'Due to the implementation, locks can be lost unexpectedly.';
