/**
 * The hosted sparse extent header ("KDMV", VMDK version 1-3, little-endian)
 * and, for stream-optimized extents written by VMware, the footer that
 * replaces it: when the header's grain directory offset is GD_AT_END the
 * real header is the copy in the last 1.5 KiB of the file (footer marker,
 * footer header, end-of-stream marker). Checked as QEMU's vmdk_open_vmdk4
 * checks them.
 */
import type { BlockSource } from '@guestlens/block';
import { formatError, unsupportedError } from '../../errors.ts';

export const VMDK4_MAGIC = 'KDMV';
export const VMDK3_MAGIC = 'COWD';
export const FLAG_NL_DETECT = 1 << 0;
export const FLAG_RGD = 1 << 1;
export const FLAG_ZERO_GRAIN = 1 << 2;
export const FLAG_COMPRESS = 1 << 16;
export const FLAG_MARKER = 1 << 17;
export const COMPRESSION_DEFLATE = 1;
export const GD_AT_END = 0xffffffffffffffffn;
/** A grain table entry meaning "this grain reads as zeros" (with the zeroed-grain flag). */
export const GTE_ZEROED = 1;
export const MARKER_EOS = 0;
export const MARKER_GT = 1;
export const MARKER_GD = 2;
export const MARKER_FOOTER = 3;

/** Field offsets from the start of the file (the magic included). */
export const SPARSE = {
  magic: 0,
  version: 4,
  flags: 8,
  capacity: 12,
  granularity: 20,
  descriptorOffset: 28,
  descriptorSize: 36,
  numGTEsPerGT: 44,
  rgdOffset: 48,
  gdOffset: 56,
  overHead: 64,
  uncleanShutdown: 72,
  checkBytes: 73,
  compressAlgorithm: 77,
} as const;
export const SPARSE_HEADER_BYTES = 512;

export interface SparseHeader {
  version: number;
  flags: number;
  /** Sectors of guest data in the extent. */
  capacity: number;
  /** Sectors per grain. */
  granularity: number;
  descriptorOffset: number;
  descriptorSize: number;
  numGTEsPerGT: number;
  gdOffset: bigint;
  /** First sector of grain data (QEMU checks the file reaches it). */
  grainOffset: number;
  compressed: boolean;
  hasMarkers: boolean;
  zeroedGrains: boolean;
  /** The header came from the footer (stream-optimized, GD_AT_END). */
  fromFooter: boolean;
}

function parse(h: Buffer, image: string, at: number): SparseHeader {
  const u64 = (field: number, what: string): number => {
    const v = h.readBigUInt64LE(field);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw formatError(image, `${what} ${v} is out of range`, at + field);
    return Number(v);
  };
  const flags = h.readUInt32LE(SPARSE.flags);
  return {
    version: h.readUInt32LE(SPARSE.version),
    flags,
    capacity: u64(SPARSE.capacity, 'capacity'),
    granularity: u64(SPARSE.granularity, 'granularity'),
    descriptorOffset: u64(SPARSE.descriptorOffset, 'descriptor offset'),
    descriptorSize: u64(SPARSE.descriptorSize, 'descriptor size'),
    numGTEsPerGT: h.readUInt32LE(SPARSE.numGTEsPerGT),
    gdOffset: h.readBigUInt64LE(SPARSE.gdOffset),
    grainOffset: u64(SPARSE.overHead, 'grain offset'),
    compressed: h.readUInt16LE(SPARSE.compressAlgorithm) === COMPRESSION_DEFLATE,
    hasMarkers: (flags & FLAG_MARKER) !== 0,
    zeroedGrains: (flags & FLAG_ZERO_GRAIN) !== 0,
    fromFooter: false,
  };
}

/** The header as written at the start of the extent, unchecked (a capacity of 0 with a descriptor means "a descriptor lives here"). */
export async function readRawSparseHeader(file: BlockSource, image: string): Promise<SparseHeader> {
  if (file.size < SPARSE_HEADER_BYTES) throw formatError(image, `file is ${file.size} bytes, too short for a sparse VMDK header`, 0);
  const h = await file.read(0, SPARSE_HEADER_BYTES);
  const magic = h.toString('latin1', 0, 4);
  if (magic === VMDK3_MAGIC) throw unsupportedError(image, 'is a VMware ESX sparse extent (COWD, vmfsSparse), which guestlens does not read', 0, 'convert it with qemu-img convert -O qcow2 and read the copy');
  if (magic !== VMDK4_MAGIC) throw formatError(image, `not a sparse VMDK extent (magic ${JSON.stringify(magic)}, expected "KDMV")`, 0);
  return parse(h, image, 0);
}

/** The header to read the extent by: the footer's when the header defers to it, checked. */
export async function readSparseHeader(file: BlockSource, image: string, header?: SparseHeader): Promise<SparseHeader> {
  let h = header ?? (await readRawSparseHeader(file, image));
  if (h.gdOffset === GD_AT_END) {
    // Footer marker, footer (magic + header), end-of-stream marker: the last three sectors.
    const at = file.size - 1536;
    if (at < 0) throw formatError(image, 'the header says the grain directory is in the footer, but the file is too short to have one', SPARSE.gdOffset);
    const f = await file.read(at, 1536);
    const ok =
      f.readUInt32LE(8) === 0 &&
      f.readUInt32LE(12) === MARKER_FOOTER &&
      f.toString('latin1', 512, 516) === VMDK4_MAGIC &&
      f.readBigUInt64LE(1024) === 0n &&
      f.readUInt32LE(1032) === 0 &&
      f.readUInt32LE(1036) === MARKER_EOS;
    if (!ok) throw formatError(image, 'the header says the grain directory is in the footer, but the last 1536 bytes are not a footer marker, footer and end-of-stream marker', at);
    h = { ...parse(f.subarray(512, 1024), image, at + 512), fromFooter: true };
  }
  if (h.version > 3) throw unsupportedError(image, `VMDK version ${h.version} is not supported (1 to 3)`, SPARSE.version);
  if (h.numGTEsPerGT > 512) throw formatError(image, `grain tables of ${h.numGTEsPerGT} entries are too big (at most 512)`, SPARSE.numGTEsPerGT);
  if (h.granularity === 0 || h.numGTEsPerGT === 0) throw formatError(image, `grain table reach is zero (granularity ${h.granularity}, ${h.numGTEsPerGT} entries per table)`, SPARSE.granularity);
  if (h.granularity > 0x200000) throw formatError(image, `granularity of ${h.granularity} sectors (over 1 GiB per grain) is not credible`, SPARSE.granularity);
  if (h.gdOffset > BigInt(Math.floor(Number.MAX_SAFE_INTEGER / 512))) throw formatError(image, `grain directory offset ${h.gdOffset} is beyond any file`, SPARSE.gdOffset);
  if (h.capacity > Number.MAX_SAFE_INTEGER / 512) throw formatError(image, `capacity of ${h.capacity} sectors is beyond what guestlens supports`, SPARSE.capacity);
  if (file.size / 512 < h.grainOffset) throw formatError(image, `file is truncated: grain data should start at ${h.grainOffset * 512}, the file has ${file.size} bytes`, SPARSE.overHead);
  const gdEntries = Math.ceil(h.capacity / (h.numGTEsPerGT * h.granularity));
  if (gdEntries > 32 * 1024 * 1024) throw formatError(image, `grain directory of ${gdEntries} entries is too big`, SPARSE.capacity);
  return h;
}
