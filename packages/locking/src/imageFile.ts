/**
 * Opening an image for probing or locking: read-only, never blocking (a FIFO
 * must not hang us), and only regular files and block devices — what QEMU's
 * file and host_device drivers lock.
 */
import { closeSync, constants, fstatSync, openSync, statSync, type BigIntStats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { ImageOpenError } from './errors.ts';

/** What the kernel's lock lists name an inode by. */
export interface ImageIdentity {
  dev: bigint;
  ino: bigint;
  major: number;
  minor: number;
  type: 'file' | 'block device';
}

// glibc's dev_t encoding (gnu_dev_major / gnu_dev_minor).
export function devMajor(dev: bigint): number {
  return Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
}
export function devMinor(dev: bigint): number {
  return Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
}

function nonImageReason(st: BigIntStats): string | undefined {
  if (st.isFile() || st.isBlockDevice()) return undefined;
  if (st.isDirectory()) return 'is a directory, not a disk image';
  if (st.isFIFO()) return 'is a FIFO (named pipe), not a disk image';
  if (st.isSocket()) return 'is a socket, not a disk image';
  if (st.isCharacterDevice()) return 'is a character device, not a disk image (QEMU images are regular files or block devices)';
  return 'is not a regular file or block device';
}

function openFailure(path: string, err: unknown, doing: string): ImageOpenError {
  const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
  const reasons: Record<string, string> = {
    ENOENT: 'no such file or directory',
    ENOTDIR: 'a component of the path is not a directory',
    EACCES: `permission denied while ${doing} (run as a user who may read the image)`,
    EPERM: `operation not permitted while ${doing}`,
    ELOOP: 'too many levels of symbolic links',
    ENAMETOOLONG: 'file name too long',
    ENXIO: 'no such device',
    ENODEV: 'no such device',
  };
  return new ImageOpenError(path, reasons[code] ?? `cannot open the image: ${(err as Error).message}`, code);
}

function identityOf(st: BigIntStats): ImageIdentity {
  return { dev: st.dev, ino: st.ino, major: devMajor(st.dev), minor: devMinor(st.dev), type: st.isBlockDevice() ? 'block device' : 'file' };
}

/** Check that `path` names an image (following symlinks: locks belong to the inode) without opening it. */
export function statImage(path: string): ImageIdentity {
  if (path === '') throw new ImageOpenError(path, 'empty path');
  let st: BigIntStats;
  try {
    st = statSync(path, { bigint: true });
  } catch (err) {
    throw openFailure(path, err, 'looking the image up');
  }
  const reason = nonImageReason(st);
  if (reason) throw new ImageOpenError(path, reason, st.isDirectory() ? 'EISDIR' : 'EINVAL');
  return identityOf(st);
}

/**
 * Open the image O_RDONLY | O_NONBLOCK | O_NOCTTY (Node adds O_CLOEXEC, so a
 * command run under `guestlens lock` never inherits our locks). Returns the
 * fd, which the caller closes.
 */
export function openImage(path: string, expected: ImageIdentity = statImage(path)): { fd: number; identity: ImageIdentity } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    throw openFailure(path, err, 'opening the image for reading');
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    const reason = nonImageReason(st);
    if (reason) throw new ImageOpenError(path, reason, st.isDirectory() ? 'EISDIR' : 'EINVAL');
    if (st.dev !== expected.dev || st.ino !== expected.ino) throw new ImageOpenError(path, 'was replaced while being opened; try again', 'EAGAIN');
    return { fd, identity: identityOf(st) };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * statImage and openImage through libuv's thread pool, for long-running
 * callers (the exporter): an image behind an NBD or FUSE export whose server
 * stopped answering hangs stat(2) and open(2), and a synchronous call would
 * freeze the whole process with it.
 */
export async function statImageAsync(path: string): Promise<ImageIdentity> {
  if (path === '') throw new ImageOpenError(path, 'empty path');
  let st: BigIntStats;
  try {
    st = await stat(path, { bigint: true });
  } catch (err) {
    throw openFailure(path, err, 'looking the image up');
  }
  const reason = nonImageReason(st);
  if (reason) throw new ImageOpenError(path, reason, st.isDirectory() ? 'EISDIR' : 'EINVAL');
  return identityOf(st);
}

/** openImage's asynchronous twin (see statImageAsync): the fd and its closer. */
export async function openImageAsync(path: string, expected: ImageIdentity): Promise<{ fd: number; identity: ImageIdentity; close(): Promise<void> }> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    throw openFailure(path, err, 'opening the image for reading');
  }
  try {
    const st = await handle.stat({ bigint: true });
    const reason = nonImageReason(st);
    if (reason) throw new ImageOpenError(path, reason, st.isDirectory() ? 'EISDIR' : 'EINVAL');
    if (st.dev !== expected.dev || st.ino !== expected.ino) throw new ImageOpenError(path, 'was replaced while being opened; try again', 'EAGAIN');
    const h = handle;
    return { fd: h.fd, identity: identityOf(st), close: () => h.close() };
  } catch (err) {
    await handle.close();
    throw err;
  }
}
