/**
 * Holding QEMU-compatible locks on an image: file-posix's apply → check →
 * roll back (raw_handle_perm_lock with raw_apply_lock_bytes and
 * raw_check_lock_bytes), byte for byte, so QEMU sees us exactly as it would
 * see another QEMU with the same permissions.
 */
import { closeSync } from 'node:fs';
import { LockByteError, LockConflictError, LockingError } from './errors.ts';
import { EACCES, EAGAIN, F_RDLCK, F_UNLCK, FcntlError, POSIX_FALLBACK_WARNING, detectLockApi, setByteLock, strerror, testByte, type LockApi } from './fcntl.ts';
import { openImage, statImage, type ImageIdentity } from './imageFile.ts';
import { covers, findLockRecords, type LockHolder } from './lockRecords.ts';
import { ALL_LOCKABLE_MASK, LOCKABLE_PERMISSIONS, maskOf, namesOf, type PermissionName } from './permissions.ts';

export interface LockRequest {
  /** Permissions we use: their bytes 100+bit are locked. */
  perm: PermissionName[];
  /** Permissions we let others use; every other one has its byte 200+bit locked. */
  shared: PermissionName[];
}

export interface AcquireOptions extends LockRequest {
  /**
   * Which fcntl locks to take. Default: OFD locks as QEMU does, POSIX only
   * when the kernel has no OFD locks (with QEMU's warning in `warnings`).
   * Forcing 'POSIX' exists to exercise that path on kernels that have OFD.
   */
  api?: LockApi;
}

/**
 * Our open ImageLocks by inode. POSIX locks belong to the process and all
 * vanish when it closes any fd of the file, so with them we keep exactly one
 * fd, and one ImageLock, per image.
 */
const openLocks = new Map<string, ImageLock[]>();
const inodeKey = (id: ImageIdentity): string => `${id.dev}:${id.ino}`;

/** The fd of this process's POSIX-mode lock on that image, if any: a prober must use it rather than open (and close) another. */
export function posixLockFd(identity: ImageIdentity): number | undefined {
  return openLocks.get(inodeKey(identity))?.find((l) => l.api === 'POSIX')?.fd;
}

function lockErrorSuffix(errno: number): string {
  // QEMU elides the reason for EAGAIN/EACCES: that is simply another process's lock.
  return errno === EAGAIN || errno === EACCES ? '' : `: ${strerror(errno)}`;
}

export class ImageLock {
  /** Permissions in force (QEMU's s->perm and s->shared_perm). */
  private perm = 0;
  private shared = ALL_LOCKABLE_MASK;
  /** Bits whose bytes are actually locked on our fd right now (s->locked_perm, s->locked_shared_perm). */
  private lockedPerm = 0;
  private lockedUnshare = 0;
  private released = false;
  /** Non-fatal messages, as QEMU would print them (POSIX fallback, failed unlocks on commit). */
  readonly warnings: string[] = [];

  private constructor(
    readonly path: string,
    readonly api: LockApi,
    readonly fd: number,
    readonly identity: ImageIdentity,
  ) {}

  /** @internal use acquire() */
  static async open(path: string, api: LockApi): Promise<ImageLock> {
    const identity = statImage(path);
    // POSIX locks vanish when this process closes any fd of the file: no second ImageLock may share an inode with a POSIX one.
    const others = (openLocks.get(inodeKey(identity)) ?? []).filter((l) => !l.released);
    const posix = others.find((l) => l.api === 'POSIX');
    if (posix || (api === 'POSIX' && others.length > 0)) {
      throw new LockingError(
        `${path}: this process already holds ${posix ? 'POSIX' : 'OFD'} locks on this image (through ${(posix ?? others[0]).path}); ` +
          'with POSIX locks a process may hold an image only once, because closing any fd of it drops them all',
      );
    }
    const { fd } = openImage(path, identity);
    const lock = new ImageLock(path, api, fd, identity);
    openLocks.set(inodeKey(identity), [...others, lock]);
    return lock;
  }

  /** What we use and share now. */
  get permissions(): { perm: PermissionName[]; shared: PermissionName[] } {
    return { perm: namesOf(this.perm), shared: namesOf(this.shared) };
  }

  /** The bytes our fd has locked, ascending. */
  get lockedBytes(): number[] {
    const bytes: number[] = [];
    for (const p of LOCKABLE_PERMISSIONS) if (this.lockedPerm & (1 << p.bit)) bytes.push(p.useByte);
    for (const p of LOCKABLE_PERMISSIONS) if (this.lockedUnshare & (1 << p.bit)) bytes.push(p.unshareByte);
    return bytes;
  }

  get isReleased(): boolean {
    return this.released;
  }

  /**
   * Move to a new set of permissions (QEMU's prepare, then commit or abort):
   * lock the union of old and new, check the new set against everybody
   * else's bytes, and on a conflict drop exactly what this call added.
   */
  async change(request: LockRequest): Promise<void> {
    if (this.released) throw new LockingError(`${this.path}: the lock was already released`);
    const newPerm = maskOf(request.perm);
    const newShared = maskOf(request.shared);

    const onlyLowering = (this.perm | newPerm) === this.perm && (this.shared & newShared) === this.shared;
    if (!onlyLowering) {
      try {
        this.apply(this.perm | newPerm, ~this.shared | ~newShared, false);
      } catch (err) {
        this.abort();
        if (err instanceof LockByteError && err.byte >= 0) throw err.withHolders(await this.holdersOf(err.byte));
        throw err;
      }
      const conflict = this.check(newPerm, newShared);
      if (conflict) {
        this.abort();
        const holders = await this.holdersOf(conflict.byte);
        const name = conflict.permission;
        const first = conflict.role === 'unshare' ? `Failed to get "${name}" lock` : `Failed to get shared "${name}" lock`;
        throw new LockConflictError(this.path, `${first}\nIs another process using the image [${this.path}]?`, conflict.byte, name, conflict.role, holders);
      }
    }
    // Commit: unlocking what is no longer wanted cannot meaningfully fail; QEMU only warns.
    try {
      this.apply(newPerm, ~newShared, true);
    } catch (err) {
      this.warnings.push((err as Error).message);
    }
    this.perm = newPerm;
    this.shared = newShared;
  }

  /**
   * Drop everything, as QEMU does when it closes an image: permissions go to
   * nothing-used/all-shared (unlocking byte by byte in its order), then the fd
   * is closed, which would drop any lock left anyway. Idempotent.
   */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      this.apply(0, 0, true);
    } catch (err) {
      this.warnings.push((err as Error).message);
    }
    const key = inodeKey(this.identity);
    const rest = (openLocks.get(key) ?? []).filter((l) => l !== this);
    if (rest.length > 0) openLocks.set(key, rest);
    else openLocks.delete(key);
    closeSync(this.fd);
  }

  /** raw_apply_lock_bytes: use bytes first, then unshare bytes, in bit order; with `unlock`, drop what is not wanted. */
  private apply(permBits: number, unshareBits: number, unlock: boolean): void {
    for (const p of LOCKABLE_PERMISSIONS) {
      const bit = 1 << p.bit;
      if (permBits & bit && !(this.lockedPerm & bit)) {
        this.lockByte(p.useByte);
        this.lockedPerm |= bit;
      } else if (unlock && this.lockedPerm & bit && !(permBits & bit)) {
        this.unlockByte(p.useByte);
        this.lockedPerm &= ~bit;
      }
    }
    for (const p of LOCKABLE_PERMISSIONS) {
      const bit = 1 << p.bit;
      if (unshareBits & bit && !(this.lockedUnshare & bit)) {
        this.lockByte(p.unshareByte);
        this.lockedUnshare |= bit;
      } else if (unlock && this.lockedUnshare & bit && !(unshareBits & bit)) {
        this.unlockByte(p.unshareByte);
        this.lockedUnshare &= ~bit;
      }
    }
  }

  /** raw_check_lock_bytes: first the unshare bytes of what we want, then the use bytes of what we refuse to share. */
  private check(perm: number, shared: number): { byte: number; permission: PermissionName; role: 'use' | 'unshare' } | undefined {
    for (const p of LOCKABLE_PERMISSIONS) {
      if (perm & (1 << p.bit) && this.test(p.unshareByte)) return { byte: p.unshareByte, permission: p.name, role: 'unshare' };
    }
    for (const p of LOCKABLE_PERMISSIONS) {
      if (!(shared & (1 << p.bit)) && this.test(p.useByte)) return { byte: p.useByte, permission: p.name, role: 'use' };
    }
    return undefined;
  }

  /** RAW_PL_ABORT: back to the permissions in force. */
  private abort(): void {
    try {
      this.apply(this.perm, ~this.shared, true);
    } catch (err) {
      this.warnings.push((err as Error).message);
    }
  }

  private lockByte(byte: number): void {
    try {
      setByteLock(this.fd, this.api, byte, F_RDLCK);
    } catch (err) {
      if (!(err instanceof FcntlError)) throw err;
      throw new LockByteError(this.path, `Failed to lock byte ${byte}${lockErrorSuffix(err.errno)}`, byte, err.errno);
    }
  }

  private unlockByte(byte: number): void {
    try {
      setByteLock(this.fd, this.api, byte, F_UNLCK);
    } catch (err) {
      if (!(err instanceof FcntlError)) throw err;
      throw new LockByteError(this.path, `Failed to unlock byte ${byte}: ${strerror(err.errno)}`, byte, err.errno);
    }
  }

  private test(byte: number): boolean {
    try {
      return testByte(this.fd, this.api, byte).conflict;
    } catch (err) {
      if (!(err instanceof FcntlError)) throw err;
      // QEMU treats a failing test like a conflict (it reports the errno).
      return true;
    }
  }

  /** Who holds the byte we tripped over, leaving out our own fd (and, with POSIX locks, our own process). */
  private async holdersOf(byte: number): Promise<LockHolder[]> {
    const records = await findLockRecords(this.identity);
    const others = records.filter((r) => {
      if (!covers(r, byte)) return false;
      if (r.pid !== process.pid) return true;
      return this.api === 'POSIX' ? r.kind !== 'POSIX' : r.fd !== this.fd;
    });
    const seen = new Set<string>();
    const holders: LockHolder[] = [];
    for (const r of others) {
      const key = `${r.pid}:${r.fd}:${r.kind}`;
      if (seen.has(key)) continue;
      seen.add(key);
      holders.push({ pid: r.pid, command: r.command, fd: r.fd, kind: r.kind });
    }
    return holders;
  }
}

/**
 * Open `path` read-only and take QEMU's locks for using `perm` while sharing
 * only `shared`. Throws LockConflictError with QEMU's exact text when another
 * process's locks forbid it; nothing of ours stays locked then.
 */
export async function acquire(path: string, options: AcquireOptions): Promise<ImageLock> {
  // Validate names before touching the file.
  maskOf(options.perm);
  maskOf(options.shared);
  const detected = detectLockApi();
  const api = options.api ?? detected;
  const lock = await ImageLock.open(path, api);
  if (api === 'POSIX' && detected === 'POSIX') lock.warnings.push(POSIX_FALLBACK_WARNING);
  try {
    await lock.change({ perm: options.perm, shared: options.shared });
  } catch (err) {
    await lock.release();
    throw err;
  }
  return lock;
}
