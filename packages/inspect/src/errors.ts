/**
 * The inspect package's errors. Every one is a user-facing message (a bad
 * image, a path that does not exist in the guest, a filesystem we cannot
 * read): the CLI prints it without a stack. All extend InspectError, which
 * extends the one GuestlensError base (code, data, toJSON, retryable).
 * Filesystem drivers' errors are in filesystems/errors.ts.
 */
import { GuestlensError, type GuestlensErrorOptions } from '@guestlens/block';

/** Base class: a problem with what is on the disk or what the user asked for, not a bug. */
export class InspectError extends GuestlensError {
  constructor(message: string, code = 'EINSPECT', options: GuestlensErrorOptions = {}) {
    super(code, message, options);
  }
}

/**
 * A partition table that cannot be used at all (as opposed to one with a
 * damaged part we could work around, which becomes a warning).
 */
export class PartitionTableError extends InspectError {
  constructor(
    /** The block source's name (image path). */
    readonly source: string,
    /** Byte offset of the structure at fault. */
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`${source}: partition table at byte offset ${offset}: ${reason}`, 'EFSCORRUPTED', { data: { source, offset, reason } });
  }
}

/** The probe found a type for which guestlens has no reader (yet). */
export class UnsupportedFilesystemError extends InspectError {
  constructor(
    readonly device: string,
    readonly type: string,
  ) {
    super(`${device}: ${describeUnsupported(type)}`, 'EOPNOTSUPP', { data: { device, type } });
  }

  /** The reason without the device (for reports that name the device already). */
  get detail(): string {
    return describeUnsupported(this.type);
  }
}

function describeUnsupported(type: string): string {
  return type === 'unknown' ? 'no filesystem guestlens recognises was found on this device' : `guestlens cannot read ${type} filesystems (yet)`;
}

/** errno-style codes for failures to resolve a path inside the guest, named as the kernel would. */
export type GuestPathErrorCode = 'ENOENT' | 'ENOTDIR' | 'ELOOP' | 'EISDIR' | 'EINVAL' | 'ENAMETOOLONG';

const pathReasons: Record<GuestPathErrorCode, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  ELOOP: 'too many levels of symbolic links',
  EISDIR: 'is a directory',
  EINVAL: 'invalid argument',
  ENAMETOOLONG: 'file name too long',
};

/** A path inside the guest that cannot be resolved or used as asked: names the guest path and the device. */
export class GuestPathError extends InspectError {
  declare readonly code: GuestPathErrorCode;
  constructor(
    code: GuestPathErrorCode,
    /** The path as the caller gave it. */
    readonly guestPath: string,
    /** The guest device holding the filesystem (/dev/sda1). */
    readonly device: string,
    /** Extra detail (which component failed, what the symlink pointed to). */
    readonly detail?: string,
  ) {
    super(`${device}:${guestPath}: ${pathReasons[code]}${detail ? ` (${detail})` : ''}`, code, { data: { guestPath, device, ...(detail ? { detail } : {}) } });
  }
}

/** An image that could not be opened as a guest disk. */
export class GuestOpenError extends InspectError {
  constructor(
    readonly image: string,
    readonly reason: string,
  ) {
    super(`${image}: ${reason}`, 'EGUESTOPEN', { data: { image, reason } });
  }
}

/** A file too large to read into memory at once: the caller should stream it. */
export class FileTooLargeError extends InspectError {
  constructor(
    readonly device: string,
    readonly guestPath: string,
    readonly size: number,
    readonly limit: number,
  ) {
    super(`${device}:${guestPath}: file is ${size} bytes, more than readFile accepts (${limit}); use createReadStream`, 'EFBIG', { data: { device, guestPath, size, limit } });
  }
}

export { WindowBoundsError as SliceBoundsError } from '@guestlens/block';
