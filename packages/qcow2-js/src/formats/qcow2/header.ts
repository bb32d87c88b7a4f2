/**
 * The qcow2 header (cluster 0): fixed fields, v3 fields, header extensions and
 * the backing file name, validated at the point of parsing with the checks
 * QEMU's qcow2_do_open applies, so an image QEMU refuses is refused here too,
 * with the offset of the offending field.
 */
import type { BlockSource } from '@guestlens/block';
import { formatError, unsupportedError } from '../../errors.ts';
import {
  AUTOCLEAR_DATA_FILE_RAW,
  FEATURE_TYPES,
  INCOMPAT_COMPRESSION,
  INCOMPAT_DATA_FILE,
  INCOMPAT_EXTL2,
  INCOMPAT_KNOWN,
  featureNames,
  type FeatureName,
} from './features.ts';

export const QCOW2_MAGIC = 0x514649fb;
export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;
/** QEMU's QCOW_MAX_L1_SIZE: bounds the one allocation an image can ask for at open. */
export const MAX_L1_BYTES = 32 * 1024 * 1024;
const MAX_REFTABLE_BYTES = 8 * 1024 * 1024;
const MAX_SNAPSHOTS = 65536;
const SNAPSHOT_HEADER_BYTES = 40;
const V2_HEADER_LENGTH = 72;
const V3_MIN_HEADER_LENGTH = 104;
const COMPRESSION_TYPE_OFFSET = 104;
const MAX_BACKING_NAME = 1023;
/** Backing-format names are stored in a 16-byte buffer in QEMU, NUL included. */
const MAX_BACKING_FORMAT = 16;

const EXT_END = 0x00000000;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_FEATURE_TABLE = 0x6803f857;
const EXT_CRYPTO_HEADER = 0x0537be77;
const EXT_DATA_FILE = 0x44415441;
const FEATURE_ENTRY_BYTES = 48;

export type CompressionType = 'deflate' | 'zstd';

export interface Qcow2Header {
  version: 2 | 3;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  clusterSize: number;
  /** Virtual size in bytes, rounded down to 512 as QEMU's block layer does. */
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: CompressionType;
  extendedL2: boolean;
  /** log2 of the number of entries in an L2 table. */
  l2Bits: number;
  /** From the backing-format header extension. */
  backingFormat?: string;
  /** The backing file name exactly as stored (relative, absolute or `json:{...}`). */
  backingFileName?: string;
  /** From the external-data-file header extension. */
  dataFileName?: string;
  featureTable: FeatureName[];
}

/** Read and validate the header of the qcow2 image in `file`. */
export async function readHeader(file: BlockSource, image: string): Promise<Qcow2Header> {
  const fileSize = file.size;
  if (fileSize < 8) throw formatError(image, `file is ${fileSize} bytes, too short to be a qcow2 image`, 0, 'is it a qcow2 image? give the format explicitly');
  const fixed = await file.read(0, Math.min(fileSize, 112));
  const magic = fixed.readUInt32BE(0);
  if (magic !== QCOW2_MAGIC) throw formatError(image, `not a qcow2 image (magic 0x${magic.toString(16).padStart(8, '0')}, expected 0x514649fb "QFI\\xfb")`, 0);
  const version = fixed.readUInt32BE(4);
  if (version !== 2 && version !== 3) {
    throw unsupportedError(image, `qcow2 version ${version} is not supported (only 2 and 3)`, 4, version === 1 ? 'version 1 is the old "qcow" format; convert it with qemu-img convert -O qcow2' : undefined);
  }
  const minHeader = version === 2 ? V2_HEADER_LENGTH : V3_MIN_HEADER_LENGTH;
  if (fixed.length < minHeader) throw formatError(image, `file ends inside the qcow2 v${version} header (${fileSize} of ${minHeader} bytes)`, fileSize);

  const clusterBits = fixed.readUInt32BE(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw formatError(image, `cluster_bits ${clusterBits} is out of range (${MIN_CLUSTER_BITS}..${MAX_CLUSTER_BITS})`, 20);
  }
  const clusterSize = 2 ** clusterBits;

  let incompatibleFeatures = 0n;
  let compatibleFeatures = 0n;
  let autoclearFeatures = 0n;
  let refcountOrder = 4;
  let headerLength = V2_HEADER_LENGTH;
  if (version === 3) {
    incompatibleFeatures = fixed.readBigUInt64BE(72);
    compatibleFeatures = fixed.readBigUInt64BE(80);
    autoclearFeatures = fixed.readBigUInt64BE(88);
    refcountOrder = fixed.readUInt32BE(96);
    headerLength = fixed.readUInt32BE(100);
    if (headerLength < V3_MIN_HEADER_LENGTH) throw formatError(image, `header_length ${headerLength} is too short (at least ${V3_MIN_HEADER_LENGTH})`, 100);
  }
  if (headerLength > clusterSize) throw formatError(image, `header_length ${headerLength} exceeds the cluster size ${clusterSize}`, 100);
  if (headerLength > fileSize) throw formatError(image, `file ends inside the header (${fileSize} of ${headerLength} bytes)`, fileSize);

  const backingFileOffset = u64(fixed, 8, image, 'backing_file_offset');
  const backingFileSize = fixed.readUInt32BE(16);
  if (backingFileOffset > clusterSize) throw formatError(image, `backing_file_offset ${backingFileOffset} lies outside the first cluster (${clusterSize} bytes)`, 8);

  // Cluster 0 up to where the backing file name starts holds the header extensions.
  // QEMU reads past the end of a short file as zeros (an end-of-extensions marker); so do we.
  const extEnd = backingFileOffset !== 0 ? backingFileOffset : clusterSize;
  const area = Buffer.alloc(Math.max(extEnd, headerLength));
  const present = Math.min(area.length, fileSize);
  (await file.read(0, present)).copy(area);

  let compressionType: CompressionType = 'deflate';
  if (headerLength > COMPRESSION_TYPE_OFFSET) {
    const type = area[COMPRESSION_TYPE_OFFSET];
    if (type === 0) compressionType = 'deflate';
    else if (type === 1) compressionType = 'zstd';
    else throw unsupportedError(image, `unknown compression type ${type}`, COMPRESSION_TYPE_OFFSET);
  }
  if (compressionType === 'deflate' && incompatibleFeatures & INCOMPAT_COMPRESSION) {
    throw formatError(image, 'the compression-type feature bit is set but the compression type is zlib', 72);
  }
  if (compressionType !== 'deflate' && !(incompatibleFeatures & INCOMPAT_COMPRESSION)) {
    throw formatError(image, 'compression type is not zlib but the compression-type feature bit is not set', 72);
  }

  const unknown = incompatibleFeatures & ~INCOMPAT_KNOWN;
  if (unknown) {
    // Name them from the image's own feature-name table, read leniently: a broken table must not hide the real problem.
    let table: FeatureName[] = [];
    try {
      table = parseExtensions(area, headerLength, extEnd, image).featureTable;
    } catch {
      /* keep the built-in names */
    }
    const names = featureNames('incompatible', unknown, table);
    throw unsupportedError(image, `uses incompatible feature(s) guestlens cannot read: ${names.join(', ')}`, 72, 'the image needs a newer reader; qemu-img convert can rewrite it without them');
  }

  const extendedL2 = (incompatibleFeatures & INCOMPAT_EXTL2) !== 0n;
  if (extendedL2 && clusterBits < 14) {
    throw formatError(image, `extended L2 entries need clusters of at least 16 KiB (subclusters of ${clusterSize / 32} bytes are too small)`, 20);
  }
  if (refcountOrder > 6) throw formatError(image, `refcount_order ${refcountOrder} is too large (at most 6)`, 96);

  const cryptMethod = fixed.readUInt32BE(32);
  if (cryptMethod !== 0) {
    const what = cryptMethod === 1 ? 'AES-encrypted' : cryptMethod === 2 ? 'LUKS-encrypted' : `encrypted with unknown method ${cryptMethod}`;
    throw unsupportedError(image, `is ${what}; guestlens does not read encrypted images`, 32, 'decrypt it first, e.g. qemu-img convert --object secret,... --image-opts ... -O qcow2');
  }

  const l2Bits = clusterBits - (extendedL2 ? 4 : 3);
  const rawSize = u64(fixed, 24, image, 'size', 'virtual size');
  const size = Math.floor(rawSize / 512) * 512;

  const refcountTableOffset = u64(fixed, 48, image, 'refcount_table_offset');
  const refcountTableClusters = fixed.readUInt32BE(56);
  if (refcountTableClusters === 0) throw formatError(image, 'has no reference count table (refcount_table_clusters is 0)', 56);
  validateTable(image, 'reference count table', refcountTableOffset, 48, refcountTableClusters, 56, clusterSize, MAX_REFTABLE_BYTES, clusterSize);

  const nbSnapshots = fixed.readUInt32BE(60);
  const snapshotsOffset = u64(fixed, 64, image, 'snapshots_offset');
  validateTable(image, 'snapshot table', snapshotsOffset, 64, nbSnapshots, 60, SNAPSHOT_HEADER_BYTES, SNAPSHOT_HEADER_BYTES * MAX_SNAPSHOTS, clusterSize);

  const l1Size = fixed.readUInt32BE(36);
  const l1TableOffset = u64(fixed, 40, image, 'l1_table_offset');
  validateTable(image, 'L1 table', l1TableOffset, 40, l1Size, 36, 8, MAX_L1_BYTES, clusterSize);
  const l1Needed = Math.ceil(size / 2 ** (clusterBits + l2Bits));
  if (l1Size < l1Needed) throw formatError(image, `l1_size ${l1Size} is too small for a virtual size of ${size} bytes (needs ${l1Needed})`, 36);

  const ext = parseExtensions(area, headerLength, extEnd, image);

  if (incompatibleFeatures & INCOMPAT_DATA_FILE) {
    if (ext.dataFileName === undefined) throw formatError(image, 'uses an external data file but does not name it (no data-file header extension)', headerLength);
  } else if (autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) {
    throw formatError(image, 'sets data-file-raw without an external data file', 88);
  }

  let backingFileName: string | undefined;
  if (backingFileOffset !== 0) {
    if (backingFileSize > Math.min(MAX_BACKING_NAME, clusterSize - backingFileOffset)) {
      throw formatError(image, `backing file name of ${backingFileSize} bytes is too long`, 16);
    }
    if (backingFileOffset + backingFileSize > fileSize) {
      throw formatError(image, `file ends inside the backing file name (${backingFileSize} bytes at ${backingFileOffset})`, backingFileOffset);
    }
    const bytes = await file.read(backingFileOffset, backingFileSize);
    backingFileName = cString(bytes, image, 'backing file name', backingFileOffset);
    // An empty name means no backing file, as in QEMU.
    if (backingFileName === '') backingFileName = undefined;
  }

  return {
    version,
    backingFileOffset,
    backingFileSize,
    clusterBits,
    clusterSize,
    size,
    cryptMethod,
    l1Size,
    l1TableOffset,
    refcountTableOffset,
    refcountTableClusters,
    nbSnapshots,
    snapshotsOffset,
    incompatibleFeatures,
    compatibleFeatures,
    autoclearFeatures,
    refcountOrder,
    headerLength,
    compressionType,
    extendedL2,
    l2Bits,
    backingFormat: ext.backingFormat,
    backingFileName,
    dataFileName: ext.dataFileName,
    featureTable: ext.featureTable,
  };
}

interface Extensions {
  backingFormat?: string;
  dataFileName?: string;
  featureTable: FeatureName[];
}

/** Header extensions: `u32 type, u32 length, data, padding to 8` from header_length up to `end`. */
function parseExtensions(area: Buffer, start: number, end: number, image: string): Extensions {
  const result: Extensions = { featureTable: [] };
  let offset = start;
  while (offset < end) {
    const at = offset;
    if (offset + 8 > end) throw formatError(image, `header extension at ${at} runs past the end of the header area (${end})`, at);
    const type = area.readUInt32BE(offset);
    const length = area.readUInt32BE(offset + 4);
    offset += 8;
    if (length > end - offset) {
      throw formatError(image, `header extension 0x${type.toString(16).padStart(8, '0')} of ${length} bytes runs past the end of the header area (${end})`, at);
    }
    const data = area.subarray(offset, offset + length);
    switch (type) {
      case EXT_END:
        return result;
      case EXT_BACKING_FORMAT:
        if (length >= MAX_BACKING_FORMAT) throw formatError(image, `backing format name of ${length} bytes is too long (at most ${MAX_BACKING_FORMAT - 1})`, at);
        result.backingFormat = cString(data, image, 'backing format name', offset);
        break;
      case EXT_FEATURE_TABLE:
        result.featureTable = parseFeatureTable(data);
        break;
      case EXT_CRYPTO_HEADER:
        throw formatError(image, 'has an encryption header extension but is not LUKS-encrypted', at);
      case EXT_DATA_FILE:
        result.dataFileName = cString(data, image, 'external data file name', offset);
        break;
      default:
        // Bitmaps and unknown extensions do not change what the guest reads.
        break;
    }
    offset += Math.ceil(length / 8) * 8;
  }
  return result;
}

function parseFeatureTable(data: Buffer): FeatureName[] {
  const table: FeatureName[] = [];
  for (let p = 0; p + FEATURE_ENTRY_BYTES <= data.length; p += FEATURE_ENTRY_BYTES) {
    const typeCode = data[p];
    const name = data.subarray(p + 2, p + FEATURE_ENTRY_BYTES);
    const nul = name.indexOf(0);
    const text = name.subarray(0, nul === -1 ? name.length : nul).toString('latin1');
    if (text === '') break;
    const type = FEATURE_TYPES[typeCode];
    if (type) table.push({ type, bit: data[p + 1], name: text });
  }
  return table;
}

/** A C string (up to the first NUL) that must be valid UTF-8 to become a path. */
function cString(bytes: Buffer, image: string, what: string, offset: number): string {
  const nul = bytes.indexOf(0);
  const raw = nul === -1 ? bytes : bytes.subarray(0, nul);
  const text = raw.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(raw)) throw unsupportedError(image, `${what} is not valid UTF-8`, offset);
  return text;
}

function u64(buf: Buffer, offset: number, image: string, field: string, what = field): number {
  const value = buf.readBigUInt64BE(offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw formatError(image, `${what} ${value} is beyond what guestlens supports (2^53)`, offset);
  }
  return Number(value);
}

/** QEMU's qcow2_validate_table: bounded size, cluster-aligned offset. */
function validateTable(image: string, what: string, offset: number, offsetField: number, entries: number, entriesField: number, entryBytes: number, maxBytes: number, clusterSize: number): void {
  if (entries > maxBytes / entryBytes) throw formatError(image, `${what} of ${entries} entries is too large (at most ${Math.floor(maxBytes / entryBytes)})`, entriesField);
  if (offset % clusterSize !== 0) throw formatError(image, `${what} offset ${offset} is not aligned to the cluster size ${clusterSize}`, offsetField);
}
