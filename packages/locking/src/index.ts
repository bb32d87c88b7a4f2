/**
 * @guestlens/locking: QEMU's file-posix image-locking protocol. Tell who holds
 * an image (probe) and hold QEMU-compatible locks ourselves (acquire).
 */
export { PERMISSIONS, PERMISSION_NAMES, LOCKABLE_PERMISSIONS, isPermissionName, type Permission, type PermissionName } from './permissions.ts';
export { probe, type ProbeResult, type ByteState, type ImageHolder } from './probe.ts';
export { acquire, ImageLock, type AcquireOptions, type LockRequest } from './imageLock.ts';
export { verdictOf } from './verdict.ts';
export { statImage as imageIdentity, type ImageIdentity } from './imageFile.ts';
export { detectLockApi, POSIX_FALLBACK_WARNING, type LockApi } from './fcntl.ts';
export type { LockHolder } from './lockRecords.ts';
export { LockingError, ImageOpenError, LockConflictError, LockByteError, holderLabel, quotePath } from './errors.ts';
