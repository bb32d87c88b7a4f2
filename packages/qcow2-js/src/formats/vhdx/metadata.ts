/**
 * The metadata region: its table of items, then the five items every VHDX
 * has (file parameters, virtual disk size, page 83 data, logical and
 * physical sector size) and, for differencing disks, the parent locator.
 * Checked as QEMU's vhdx_parse_metadata checks them.
 */
import type { BlockSource } from '@guestlens/block';
import { formatError, toSafeOffset, unsupportedError } from '../../errors.ts';
import { guidString } from '../common/guid.ts';
import {
  BLOCK_SIZE_MAX,
  BLOCK_SIZE_MIN,
  FILE_PARAMETERS_GUID,
  FILE_PARAM_HAS_PARENT,
  FILE_PARAM_LEAVE_BLOCKS_ALLOCATED,
  LOGICAL_SECTOR_SIZE_GUID,
  MAX_METADATA_ENTRIES,
  METADATA_ENTRY_BYTES,
  METADATA_IS_REQUIRED,
  METADATA_SIGNATURE,
  METADATA_TABLE_BYTES,
  PAGE83_GUID,
  PARENT_LOCATOR_GUID,
  PHYSICAL_SECTOR_SIZE_GUID,
  SECTORS_PER_BITMAP_BLOCK,
  VIRTUAL_DISK_SIZE_GUID,
} from './layout.ts';
import type { Region } from './regionTable.ts';

/** Parent locators larger than this are not locators. */
const MAX_PARENT_LOCATOR_BYTES = 64 * 1024;

export interface VhdxMetadata {
  blockSize: number;
  leaveBlocksAllocated: boolean;
  hasParent: boolean;
  virtualDiskSize: number;
  logicalSectorSize: number;
  physicalSectorSize: number;
  page83: string;
  /** Payload blocks per sector bitmap block. */
  chunkRatio: number;
  /** The parent locator item's bytes, when the disk has a parent. */
  parentLocator?: { bytes: Buffer; at: number };
}

const ITEMS = [
  ['file parameters', FILE_PARAMETERS_GUID],
  ['virtual disk size', VIRTUAL_DISK_SIZE_GUID],
  ['page 83 data', PAGE83_GUID],
  ['logical sector size', LOGICAL_SECTOR_SIZE_GUID],
  ['physical sector size', PHYSICAL_SECTOR_SIZE_GUID],
  ['parent locator', PARENT_LOCATOR_GUID],
] as const;
type ItemName = (typeof ITEMS)[number][0];

export async function readMetadata(file: BlockSource, region: Region, image: string): Promise<VhdxMetadata> {
  const at = region.offset;
  const tableBytes = Math.min(METADATA_TABLE_BYTES, region.length);
  // The table header (signature, reserved, entry count) is 32 bytes; a region shorter than that holds no table.
  if (tableBytes < 32) throw formatError(image, `metadata region at ${at} is ${region.length} bytes, too small for a metadata table`, at);
  if (at + tableBytes > file.size) throw formatError(image, `metadata region at ${at} lies past the end of the file (${file.size} bytes)`, at);
  const table = await file.read(at, tableBytes);
  if (table.toString('latin1', 0, 8) !== METADATA_SIGNATURE) throw formatError(image, `no metadata table ("metadata") at offset ${at}`, at);
  const count = table.readUInt16LE(10);
  if (count > MAX_METADATA_ENTRIES || 32 + count * METADATA_ENTRY_BYTES > tableBytes) throw formatError(image, `metadata table has ${count} entries, more than fit`, at + 10);
  const found = new Map<ItemName, { offset: number; length: number; entryAt: number }>();
  for (let i = 0; i < count; i++) {
    const p = 32 + i * METADATA_ENTRY_BYTES;
    const id = table.subarray(p, p + 16);
    const item = ITEMS.find(([, guid]) => guid.equals(id));
    const entryAt = at + p;
    if (!item) {
      if (table.readUInt32LE(p + 24) & METADATA_IS_REQUIRED) throw unsupportedError(image, `requires metadata item ${guidString(id)}, which guestlens does not know`, entryAt);
      continue;
    }
    if (found.has(item[0])) throw formatError(image, `the metadata table names the ${item[0]} twice`, entryAt);
    found.set(item[0], { offset: table.readUInt32LE(p + 16), length: table.readUInt32LE(p + 20), entryAt });
  }
  const readItem = async (name: ItemName, bytes: number): Promise<Buffer> => {
    const item = found.get(name);
    if (!item) throw unsupportedError(image, `has no ${name} metadata item`, at);
    if (item.length < bytes || item.offset + item.length > region.length || at + item.offset + item.length > file.size) {
      throw formatError(image, `the ${name} metadata item (${item.length} bytes at ${item.offset} of the metadata region) does not fit`, item.entryAt);
    }
    return file.read(at + item.offset, name === 'parent locator' ? Math.min(item.length, MAX_PARENT_LOCATOR_BYTES) : bytes);
  };
  const params = await readItem('file parameters', 8);
  const blockSize = params.readUInt32LE(0);
  const flags = params.readUInt32LE(4);
  const virtualDiskSize = toSafeOffset((await readItem('virtual disk size', 8)).readBigUInt64LE(0), image, 'virtual disk size', found.get('virtual disk size')?.entryAt);
  const page83 = guidString(await readItem('page 83 data', 16));
  const logicalSectorSize = (await readItem('logical sector size', 4)).readUInt32LE(0);
  const physicalSectorSize = (await readItem('physical sector size', 4)).readUInt32LE(0);
  const paramsAt = found.get('file parameters')?.entryAt;
  if (blockSize < BLOCK_SIZE_MIN || blockSize > BLOCK_SIZE_MAX || (blockSize & (blockSize - 1))) {
    throw formatError(image, `block size ${blockSize} is not a power of two from 1 MiB to 256 MiB`, paramsAt);
  }
  if (logicalSectorSize !== 512 && logicalSectorSize !== 4096) {
    throw formatError(image, `logical sector size ${logicalSectorSize} is neither 512 nor 4096`, found.get('logical sector size')?.entryAt);
  }
  if (virtualDiskSize % logicalSectorSize) {
    throw formatError(image, `virtual disk size ${virtualDiskSize} is not a multiple of the logical sector size ${logicalSectorSize}`, found.get('virtual disk size')?.entryAt);
  }
  const hasParent = (flags & FILE_PARAM_HAS_PARENT) !== 0;
  const md: VhdxMetadata = {
    blockSize,
    leaveBlocksAllocated: (flags & FILE_PARAM_LEAVE_BLOCKS_ALLOCATED) !== 0,
    hasParent,
    virtualDiskSize,
    logicalSectorSize,
    physicalSectorSize,
    page83,
    chunkRatio: (SECTORS_PER_BITMAP_BLOCK * logicalSectorSize) / blockSize,
  };
  if (hasParent) {
    if (!found.has('parent locator')) throw formatError(image, 'is a differencing disk (HasParent) without a parent locator', paramsAt);
    md.parentLocator = { bytes: await readItem('parent locator', 20), at: at + (found.get('parent locator')?.offset ?? 0) };
  }
  return md;
}
