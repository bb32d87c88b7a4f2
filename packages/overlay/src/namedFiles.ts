/**
 * Which other files an image names, read by us from its header before any
 * QEMU tool opens it. `qemu-img info` on one image opens neither its backing
 * file nor (in patched QEMU) a qcow2 external data file, but it does open the
 * extent files a VMDK descriptor lists — so those must pass the backing
 * policy first, which means reading them ourselves.
 *
 * Only the fields needed for that are parsed, each bounded by the format's
 * own limits; deep validation is qemu-img's (and the qcow2 reader's) job.
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { BackingChainError } from './errors.ts';

export interface NamedFiles {
  /** The backing file name exactly as stored. */
  backing?: string;
  /** The backing format recorded beside it (qcow2's header extension). */
  backingFormat?: string;
  /** qcow2 external data file name as stored. */
  dataFile?: string;
  /** qcow2 external data file holds the guest data raw (autoclear bit 1). */
  dataFileRaw?: boolean;
  /** VMDK descriptor extent file names as stored. */
  extents?: string[];
  /** Guest-visible size, when the header says it plainly (qcow2). */
  virtualSize?: number;
}

// qcow2 header fields (big-endian), as the specification names them.
const QCOW2_MAGIC = 0x514649fb;
const QCOW2_V2_HEADER_LENGTH = 72;
const MIN_CLUSTER_BITS = 9;
const MAX_CLUSTER_BITS = 21;
const MAX_BACKING_FILE_SIZE = 1023;
const EXT_END = 0x00000000;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_DATA_FILE = 0x44415441;
const INCOMPAT_DATA_FILE = 1n << 2n;
const AUTOCLEAR_DATA_FILE_RAW = 1n << 1n;

/** QEMU reads at most 1 MiB of a VMDK text descriptor. */
const MAX_VMDK_DESCRIPTOR = 1 << 20;

/** Synchronous on purpose: a handful of small reads of one header, cheaper than thread-pool round trips. */
export function readNamedFiles(path: string, format: string): NamedFiles {
  if (format !== 'qcow2' && format !== 'vmdk') return {};
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  try {
    return format === 'qcow2' ? qcow2Names(fd, path) : vmdkNames(fd);
  } finally {
    closeSync(fd);
  }
}

function qcow2Names(fd: number, path: string): NamedFiles {
  const head = readAt(fd, 0, 104);
  if (head.length < QCOW2_V2_HEADER_LENGTH || head.readUInt32BE(0) !== QCOW2_MAGIC) {
    throw new BackingChainError(path, 'not a qcow2 image (bad magic); its header cannot be read');
  }
  const version = head.readUInt32BE(4);
  const backingFileOffset = head.readBigUInt64BE(8);
  const backingFileSize = head.readUInt32BE(16);
  const clusterBits = head.readUInt32BE(20);
  const size = head.readBigUInt64BE(24);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw new BackingChainError(path, `qcow2 header has cluster_bits ${clusterBits} (valid: ${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS})`);
  }
  const clusterSize = 2 ** clusterBits;
  const names: NamedFiles = { virtualSize: size <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(size) : undefined };

  let headerLength = QCOW2_V2_HEADER_LENGTH;
  let incompatible = 0n;
  let autoclear = 0n;
  if (version >= 3) {
    if (head.length < 104) throw new BackingChainError(path, 'qcow2 version 3 header is truncated');
    incompatible = head.readBigUInt64BE(72);
    autoclear = head.readBigUInt64BE(88);
    headerLength = head.readUInt32BE(100);
    if (headerLength < 104 || headerLength > clusterSize) throw new BackingChainError(path, `qcow2 header_length ${headerLength} is out of range`);
  }

  if (backingFileOffset !== 0n) {
    if (backingFileSize > MAX_BACKING_FILE_SIZE || backingFileOffset + BigInt(backingFileSize) > BigInt(clusterSize)) {
      throw new BackingChainError(path, `qcow2 backing file name (offset ${backingFileOffset}, ${backingFileSize} bytes) lies outside the first cluster or is too long`);
    }
    names.backing = (readAt(fd, Number(backingFileOffset), backingFileSize)).toString('utf8');
  }

  // Header extensions: from the end of the header to the end of the first cluster.
  const extensions = readAt(fd, headerLength, clusterSize - headerLength);
  for (let off = 0; off + 8 <= extensions.length; ) {
    const type = extensions.readUInt32BE(off);
    const length = extensions.readUInt32BE(off + 4);
    if (type === EXT_END) break;
    const start = off + 8;
    if (start + length > extensions.length) throw new BackingChainError(path, `qcow2 header extension 0x${type.toString(16)} runs past the first cluster`);
    const data = extensions.subarray(start, start + length);
    if (type === EXT_BACKING_FORMAT) names.backingFormat = data.toString('utf8');
    if (type === EXT_DATA_FILE) names.dataFile = data.toString('utf8');
    off = start + Math.ceil(length / 8) * 8;
  }
  if (incompatible & INCOMPAT_DATA_FILE) {
    if (names.dataFile === undefined) throw new BackingChainError(path, 'qcow2 image needs an external data file but its header does not name one');
    names.dataFileRaw = (autoclear & AUTOCLEAR_DATA_FILE_RAW) !== 0n;
  } else {
    // QEMU ignores a data file name without the incompatible-feature bit.
    delete names.dataFile;
  }
  return names;
}

const DESCRIPTOR_MAGIC = '# Disk DescriptorFile';
// QEMU: sscanf("%10s %" SCNd64 " %10s \"%511[^\n\r\"]\"") per line.
const EXTENT_LINE = /^\s*(RW|RDONLY|NOACCESS)\s+\d+\s+\S+\s+"([^"\r\n]{1,511})"/;

function vmdkNames(fd: number): NamedFiles {
  const head = readAt(fd, 0, DESCRIPTOR_MAGIC.length);
  // Sparse VMDKs (KDMV, COWD) are their own single extent; only a text descriptor names others.
  if (head.toString('latin1') !== DESCRIPTOR_MAGIC) return {};
  const text = (readAt(fd, 0, MAX_VMDK_DESCRIPTOR)).toString('latin1');
  const extents: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = EXTENT_LINE.exec(line);
    if (m) extents.push(Buffer.from(m[2], 'latin1').toString('utf8'));
  }
  return { extents };
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const bytesRead = readSync(fd, buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}
