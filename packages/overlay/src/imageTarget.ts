/**
 * The image the user named: is it there, can we read it, what format is it.
 * An explicit format wins (raw always may be asserted: it is the safe reading
 * of any file); otherwise the magic decides and anything unrecognised is raw.
 * QEMU is never asked to guess.
 */
import { statSync, type Stats } from 'node:fs';
import { resolve } from 'node:path';
import { probeFormat, readProbeBytesSync, type ProbeBytes } from '@guestlens/qcow2-js';
import { FormatMismatchError, ImageAccessError, UnreadableFormatError, UnsupportedFormatError } from './errors.ts';
import { OVERLAY_FORMATS, describeUnreadable, isOverlayFormat, type OverlayFormat } from './formats.ts';

export interface ImageTarget {
  /** As the user wrote it, for messages. */
  image: string;
  /** Absolute path: what the overlay's backing reference names. */
  path: string;
  format: OverlayFormat;
  formatFrom: 'given' | 'probed';
  blockDevice: boolean;
}

export async function resolveImage(image: string, format?: string): Promise<ImageTarget> {
  if (format !== undefined && !isOverlayFormat(format)) throw new UnsupportedFormatError(image, format, OVERLAY_FORMATS);
  if (image === '') throw new ImageAccessError(image, 'empty image path');
  const path = resolve(image);
  // Synchronous: a stat and two 512-byte reads cost less than their thread-pool round trips.
  let st: Stats;
  try {
    st = statSync(path);
  } catch (err) {
    throw accessError(image, err as NodeJS.ErrnoException);
  }
  if (st.isDirectory()) throw new ImageAccessError(image, 'is a directory, not a disk image');
  const blockDevice = st.isBlockDevice();
  if (!st.isFile() && !blockDevice) throw new ImageAccessError(image, 'is not a regular file or block device (a FIFO, socket or character device cannot back an overlay)');
  let probe: ProbeBytes;
  try {
    probe = readProbeBytesSync(path);
  } catch (err) {
    throw accessError(image, err as NodeJS.ErrnoException);
  }
  const { head, tail } = probe;
  const probed = probeFormat(head, blockDevice ? undefined : tail, path);
  if (format === undefined) {
    if (!isOverlayFormat(probed)) throw new UnreadableFormatError(image, probed, describeUnreadable(probed) ?? `in ${probed} format, which guestlens cannot read`);
    return { image, path, format: probed, formatFrom: 'probed', blockDevice };
  }
  if (format !== 'raw' && format !== probed) throw new FormatMismatchError(image, format, probed);
  return { image, path, format, formatFrom: 'given', blockDevice };
}

function accessError(image: string, err: NodeJS.ErrnoException): Error {
  switch (err.code) {
    case 'ENOENT':
      return new ImageAccessError(image, 'no such file', 'check the path');
    case 'ENOTDIR':
      return new ImageAccessError(image, 'a component of the path is not a directory');
    case 'EACCES':
    case 'EPERM':
      return new ImageAccessError(image, 'permission denied: it cannot be opened for reading', 'run guestlens as a user who can read the image');
    case 'EISDIR':
      return new ImageAccessError(image, 'is a directory, not a disk image');
    case 'ELOOP':
      return new ImageAccessError(image, 'too many levels of symbolic links');
    default:
      return err;
  }
}
