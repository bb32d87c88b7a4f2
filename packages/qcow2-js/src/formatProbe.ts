/**
 * Image-format detection by magic number, for the formats a guest disk arrives
 * in. Anything that is not recognised is raw: a raw disk is never "guessed"
 * into another format by its content beyond these magics, and callers that
 * handle untrusted raw images should not probe at all but say `raw`
 * (CVE-2010-3851: a guest can write a qcow2 header into its own raw disk).
 *
 * The checks are those of the formats' specifications:
 *   qcow2  "QFI\xfb" at 0, version 2 or 3 (version 1 is the older qcow, not read)
 *   vmdk   "KDMV" (sparse, version 4), "COWD" (ESX sparse, version 3),
 *          or a text descriptor starting with "# Disk DescriptorFile"
 *   vdi    0xbeda107f, little-endian, at 0x40
 *   vhdx   "vhdxfile" at 0
 *   vpc    "conectix": the footer, which dynamic and differencing VHDs copy
 *          to offset 0 and every VHD stores in its last 512 bytes
 */
import { open } from 'node:fs/promises';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

export type ImageFormat = 'qcow2' | 'vmdk' | 'vdi' | 'vhdx' | 'vpc' | 'raw';

/** Every format guestlens accepts, in the order they are probed (raw last: it is the fallback). */
export const IMAGE_FORMATS: readonly ImageFormat[] = ['qcow2', 'vmdk', 'vdi', 'vhdx', 'vpc', 'raw'];

/** How many bytes of the head and of the tail of an image `probeFormat` looks at. */
export const PROBE_HEAD_BYTES = 512;
export const PROBE_TAIL_BYTES = 512;

const QCOW_MAGIC = 0x514649fb;
const VMDK4_MAGIC = Buffer.from('KDMV', 'latin1');
const VMDK3_MAGIC = Buffer.from('COWD', 'latin1');
const VMDK_DESCRIPTOR = Buffer.from('# Disk DescriptorFile', 'latin1');
const VDI_SIGNATURE_OFFSET = 0x40;
const VDI_SIGNATURE = 0xbeda107f;
const VHDX_SIGNATURE = Buffer.from('vhdxfile', 'latin1');
const VPC_COOKIE = Buffer.from('conectix', 'latin1');

export function isImageFormat(name: string): name is ImageFormat {
  return (IMAGE_FORMATS as readonly string[]).includes(name);
}

/**
 * The format whose magic `head` (the first bytes of the image, at least 512
 * when the image is that long) carries; `tail` (the last 512 bytes) lets a
 * fixed VHD, whose only footer is at the end, be recognised.
 */
export function probeFormat(head: Buffer, tail?: Buffer): ImageFormat {
  if (head.length >= 8 && head.readUInt32BE(0) === QCOW_MAGIC) {
    const version = head.readUInt32BE(4);
    if (version === 2 || version === 3) return 'qcow2';
  }
  if (startsWith(head, VMDK4_MAGIC) || startsWith(head, VMDK3_MAGIC) || startsWith(head, VMDK_DESCRIPTOR)) return 'vmdk';
  if (head.length >= VDI_SIGNATURE_OFFSET + 4 && head.readUInt32LE(VDI_SIGNATURE_OFFSET) === VDI_SIGNATURE) return 'vdi';
  if (startsWith(head, VHDX_SIGNATURE)) return 'vhdx';
  if (startsWith(head, VPC_COOKIE)) return 'vpc';
  if (tail && tail.length >= PROBE_TAIL_BYTES && startsWith(tail.subarray(tail.length - PROBE_TAIL_BYTES), VPC_COOKIE)) return 'vpc';
  return 'raw';
}

/**
 * Probe an image file by path: reads its first and last 512 bytes (O_RDONLY,
 * never written). Errors from opening it (ENOENT, EACCES, EISDIR) are thrown as
 * Node's system errors, which carry the path.
 */
export async function probeFormatFile(path: string): Promise<ImageFormat> {
  const { head, tail } = await readProbeBytes(path);
  return probeFormat(head, tail);
}

/** The head and tail bytes `probeFormat` wants, read from a file or block device. */
export async function readProbeBytes(path: string): Promise<{ head: Buffer; tail: Buffer; size: number }> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw Object.assign(new Error(`EISDIR: illegal operation on a directory, read '${path}'`), { code: 'EISDIR', syscall: 'read', path });
    const head = await readAt(handle, 0, PROBE_HEAD_BYTES);
    // A block device's fstat size is 0; its tail is only needed for fixed VHDs, which live in files.
    const size = st.size;
    const tail = size > PROBE_HEAD_BYTES ? await readAt(handle, size - PROBE_TAIL_BYTES, PROBE_TAIL_BYTES) : head;
    return { head, tail, size };
  } finally {
    await handle.close();
  }
}

/**
 * The same, synchronously: a few small reads of a local image, cheaper than
 * the round trips through libuv's thread pool when many images are probed.
 */
export function readProbeBytesSync(path: string): { head: Buffer; tail: Buffer; size: number } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw Object.assign(new Error(`EISDIR: illegal operation on a directory, read '${path}'`), { code: 'EISDIR', syscall: 'read', path });
    const head = readAtSync(fd, 0, PROBE_HEAD_BYTES);
    const size = st.size;
    const tail = size > PROBE_HEAD_BYTES ? readAtSync(fd, size - PROBE_TAIL_BYTES, PROBE_TAIL_BYTES) : head;
    return { head, tail, size };
  } finally {
    closeSync(fd);
  }
}

function readAtSync(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}

async function readAt(handle: import('node:fs/promises').FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}

function startsWith(buf: Buffer, magic: Buffer): boolean {
  return buf.length >= magic.length && buf.subarray(0, magic.length).equals(magic);
}
