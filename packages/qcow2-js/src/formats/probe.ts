/**
 * Image-format detection by magic, for paths: reads the head and tail bytes
 * the format table's probes look at. Anything that is not recognised is raw:
 * a raw disk is never "guessed" into another format beyond these magics, and
 * callers that handle untrusted raw images should not probe at all but say
 * `raw` (CVE-2010-3851: a guest can write a qcow2 header into its own raw disk).
 */
import { open } from 'node:fs/promises';
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { GuestlensError, readAt, readAtSync } from '@guestlens/block';
import { probeDriver } from './table.ts';

/** How many bytes of the head and of the tail of an image the probes look at. */
export const PROBE_HEAD_BYTES = 512;
export const PROBE_TAIL_BYTES = 512;

export interface ProbeBytes {
  head: Buffer;
  /** Undefined for block devices (their fstat size is 0; fixed VHDs live in files). */
  tail: Buffer | undefined;
  size: number;
}

/** The format whose magic `head` (and `tail`) carry; `filename` for formats QEMU knows by name (dmg). */
export function probeFormat(head: Buffer, tail?: Buffer, filename = ''): string {
  return probeDriver(head, tail, filename).format;
}

/**
 * Probe an image file by path: reads its first and last 512 bytes (O_RDONLY,
 * never written). Errors from opening it (ENOENT, EACCES, EISDIR) are thrown as
 * Node's system errors, which carry the path.
 */
export async function probeFormatFile(path: string): Promise<string> {
  const { head, tail } = await readProbeBytes(path);
  return probeFormat(head, tail, path);
}

/** The head and tail bytes the probes want, read from a file or block device. */
export async function readProbeBytes(path: string): Promise<ProbeBytes> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw isDirectoryError(path);
    const head = await readAt(handle, 0, PROBE_HEAD_BYTES);
    const size = st.size;
    const tail = st.isFile() ? (size > PROBE_HEAD_BYTES ? await readAt(handle, size - PROBE_TAIL_BYTES, PROBE_TAIL_BYTES) : head) : undefined;
    return { head, tail, size };
  } finally {
    await handle.close();
  }
}

/**
 * The same, synchronously: a few small reads of a local image, cheaper than
 * the round trips through libuv's thread pool when many images are probed.
 */
export function readProbeBytesSync(path: string): ProbeBytes {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw isDirectoryError(path);
    const head = readAtSync(fd, 0, PROBE_HEAD_BYTES);
    const size = st.size;
    const tail = st.isFile() ? (size > PROBE_HEAD_BYTES ? readAtSync(fd, size - PROBE_TAIL_BYTES, PROBE_TAIL_BYTES) : head) : undefined;
    return { head, tail, size };
  } finally {
    closeSync(fd);
  }
}

function isDirectoryError(path: string): Error {
  return new GuestlensError('EISDIR', `${path}: is a directory, not a disk image`, { data: { path } });
}
