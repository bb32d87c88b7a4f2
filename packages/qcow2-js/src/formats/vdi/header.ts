/**
 * The VirtualBox disk image header (VDI 1.1, 512 bytes, little-endian) and
 * the checks QEMU's vdi_open applies, so an image QEMU refuses is refused
 * here too, with the offset of the field at fault. One table of offsets,
 * read by the probe and the reader.
 */
import type { BlockSource } from '@guestlens/block';
import { formatError, unsupportedError } from '../../errors.ts';
import { guidString, isNullGuid } from '../common/guid.ts';

export const VDI_SIGNATURE = 0xbeda107f;
export const VDI_VERSION_1_1 = 0x00010001;
export const VDI_HEADER_BYTES = 512;
export const VDI_TYPE_DYNAMIC = 1;
export const VDI_TYPE_STATIC = 2;
/** A block never written: reads as zeros (VDI has no backing file in QEMU). */
export const VDI_UNALLOCATED = 0xffffffff;
/** A discarded block: reads as zeros. */
export const VDI_DISCARDED = 0xfffffffe;
/** QEMU's limit: the block map, rounded up to a sector, stays below 2 GiB. */
export const VDI_BLOCKS_IN_IMAGE_MAX = Math.floor((2 ** 31 - 512) / 4);
/** The only block size QEMU (and VirtualBox) uses. */
export const VDI_BLOCK_SIZE = 1024 * 1024;

/** Field offsets (the "pre-header" text, signature and version, then the v1.1 header). */
export const VDI = {
  text: 0x00,
  signature: 0x40,
  version: 0x44,
  headerSize: 0x48,
  imageType: 0x4c,
  imageFlags: 0x50,
  description: 0x54,
  offsetBmap: 0x154,
  offsetData: 0x158,
  cylinders: 0x15c,
  heads: 0x160,
  sectors: 0x164,
  sectorSize: 0x168,
  diskSize: 0x170,
  blockSize: 0x178,
  blockExtra: 0x17c,
  blocksInImage: 0x180,
  blocksAllocated: 0x184,
  uuidImage: 0x188,
  uuidLastSnap: 0x198,
  uuidLink: 0x1a8,
  uuidParent: 0x1b8,
} as const;

export interface VdiHeader {
  imageType: number;
  offsetBmap: number;
  offsetData: number;
  /** Virtual size in bytes, rounded up to 512 as QEMU does for VBoxManage's odd sizes. */
  diskSize: number;
  blockSize: number;
  blocksInImage: number;
  blocksAllocated: number;
  uuidImage: string;
}

export function isVdi(head: Buffer): boolean {
  return head.length >= 0x44 && head.readUInt32LE(VDI.signature) === VDI_SIGNATURE;
}

export async function readVdiHeader(file: BlockSource, image: string): Promise<VdiHeader> {
  if (file.size < VDI_HEADER_BYTES) throw formatError(image, `file is ${file.size} bytes, too short for a VDI header (${VDI_HEADER_BYTES})`, 0);
  const h = await file.read(0, VDI_HEADER_BYTES);
  const signature = h.readUInt32LE(VDI.signature);
  if (signature !== VDI_SIGNATURE) throw formatError(image, `not a VDI image (signature 0x${signature.toString(16).padStart(8, '0')}, expected 0xbeda107f)`, VDI.signature);
  const version = h.readUInt32LE(VDI.version);
  if (version !== VDI_VERSION_1_1) throw unsupportedError(image, `VDI version ${version >>> 16}.${version & 0xffff} is not supported (only 1.1)`, VDI.version);
  const rawSize = h.readBigUInt64LE(VDI.diskSize);
  const maxSize = BigInt(VDI_BLOCKS_IN_IMAGE_MAX) * BigInt(VDI_BLOCK_SIZE);
  if (rawSize > maxSize) throw unsupportedError(image, `VDI disk size ${rawSize} is larger than QEMU supports (${maxSize})`, VDI.diskSize);
  const diskSize = Math.ceil(Number(rawSize) / 512) * 512;
  const offsetBmap = h.readUInt32LE(VDI.offsetBmap);
  const offsetData = h.readUInt32LE(VDI.offsetData);
  const sectorSize = h.readUInt32LE(VDI.sectorSize);
  const blockSize = h.readUInt32LE(VDI.blockSize);
  const blocksInImage = h.readUInt32LE(VDI.blocksInImage);
  if (offsetBmap % 512) throw unsupportedError(image, `block map offset 0x${offsetBmap.toString(16)} is not sector-aligned`, VDI.offsetBmap);
  if (offsetData % 512) throw unsupportedError(image, `data offset 0x${offsetData.toString(16)} is not sector-aligned`, VDI.offsetData);
  if (sectorSize !== 512) throw unsupportedError(image, `sector size ${sectorSize} is not 512`, VDI.sectorSize);
  if (blockSize !== VDI_BLOCK_SIZE) throw unsupportedError(image, `block size ${blockSize} is not ${VDI_BLOCK_SIZE}`, VDI.blockSize);
  if (diskSize > blocksInImage * blockSize) {
    throw formatError(image, `disk size ${diskSize} is larger than the block map has room for (${blocksInImage} blocks of ${blockSize} bytes)`, VDI.blocksInImage);
  }
  if (!isNullGuid(h, VDI.uuidLink)) throw unsupportedError(image, 'is a VirtualBox differencing image (its link UUID is set), which QEMU and guestlens do not read', VDI.uuidLink, 'merge it into its parent with VBoxManage first');
  if (!isNullGuid(h, VDI.uuidParent)) throw unsupportedError(image, 'is a VirtualBox differencing image (its parent UUID is set), which QEMU and guestlens do not read', VDI.uuidParent, 'merge it into its parent with VBoxManage first');
  if (blocksInImage > VDI_BLOCKS_IN_IMAGE_MAX) throw unsupportedError(image, `too many blocks (${blocksInImage}, at most ${VDI_BLOCKS_IN_IMAGE_MAX})`, VDI.blocksInImage);
  return {
    imageType: h.readUInt32LE(VDI.imageType),
    offsetBmap,
    offsetData,
    diskSize,
    blockSize,
    blocksInImage,
    blocksAllocated: h.readUInt32LE(VDI.blocksAllocated),
    uuidImage: guidString(h, VDI.uuidImage),
  };
}
