/**
 * The VHDX on-disk layout (MS-VHDX 1.0): where the fixed structures are,
 * their signatures and GUIDs, the BAT entry states. One table, read by the
 * probe and the reader.
 */
import { guidBytes } from '../common/guid.ts';

export const KiB = 1024;
export const MiB = 1024 * 1024;

export const FILE_SIGNATURE = 'vhdxfile';
export const HEADER1_OFFSET = 64 * KiB;
export const HEADER2_OFFSET = 128 * KiB;
/** Each header's checksum covers 4 KiB. */
export const HEADER_BYTES = 4 * KiB;
export const REGION_TABLE1_OFFSET = 192 * KiB;
export const REGION_TABLE2_OFFSET = 256 * KiB;
/** The region table's checksum covers 64 KiB. */
export const REGION_TABLE_BYTES = 64 * KiB;
/** The header section: nothing but headers and region tables lives below it. */
export const HEADER_SECTION_BYTES = 1 * MiB;

export const HEADER_SIGNATURE = 'head';
export const REGION_SIGNATURE = 'regi';
export const METADATA_SIGNATURE = 'metadata';

export const HEADER = {
  signature: 0,
  checksum: 4,
  sequenceNumber: 8,
  fileWriteGuid: 16,
  dataWriteGuid: 32,
  logGuid: 48,
  logVersion: 64,
  version: 66,
  logLength: 68,
  logOffset: 72,
} as const;

/** Region table entries after the 16-byte table header. */
export const REGION_ENTRY_BYTES = 32;
export const MAX_REGION_ENTRIES = 2047;
export const REGION_REQUIRED = 1;

export const BAT_GUID = guidBytes('2DC27766-F623-4200-9D64-115E9BFD4A08');
export const METADATA_GUID = guidBytes('8B7CA206-4790-4B9A-B8FE-575F050F886E');

/** The metadata table: a 32-byte header, then 32-byte entries; at most 64 KiB. */
export const METADATA_TABLE_BYTES = 64 * KiB;
export const METADATA_ENTRY_BYTES = 32;
export const MAX_METADATA_ENTRIES = 2047;
export const METADATA_IS_REQUIRED = 4;

export const FILE_PARAMETERS_GUID = guidBytes('CAA16737-FA36-4D43-B3B6-33F0AA44E76B');
export const VIRTUAL_DISK_SIZE_GUID = guidBytes('2FA54224-CD1B-4876-B211-5DBED83BF4B8');
export const PAGE83_GUID = guidBytes('BECA12AB-B2E6-4523-93EF-C309E000C746');
export const LOGICAL_SECTOR_SIZE_GUID = guidBytes('8141BF1D-A96F-4709-BA47-F233A8FAAB5F');
export const PHYSICAL_SECTOR_SIZE_GUID = guidBytes('CDA348C7-445D-4471-9CC9-E9885251C556');
export const PARENT_LOCATOR_GUID = guidBytes('A8D35F2D-B30B-454D-ABF7-D3D84834AB0C');
/** The only parent locator type: a VHDX parent. */
export const VHDX_PARENT_TYPE_GUID = guidBytes('B04AEFB7-D19E-4A81-B789-25B8E9445913');

export const FILE_PARAM_LEAVE_BLOCKS_ALLOCATED = 1;
export const FILE_PARAM_HAS_PARENT = 2;
export const BLOCK_SIZE_MIN = 1 * MiB;
export const BLOCK_SIZE_MAX = 256 * MiB;
/** Sectors one sector bitmap block describes: 2^23. */
export const SECTORS_PER_BITMAP_BLOCK = 2 ** 23;

/** Payload block states (BAT entry bits 0-2). */
export const PAYLOAD_BLOCK_NOT_PRESENT = 0;
export const PAYLOAD_BLOCK_UNDEFINED = 1;
export const PAYLOAD_BLOCK_ZERO = 2;
export const PAYLOAD_BLOCK_UNMAPPED = 3;
/** The value of UNMAPPED in the 0.95 draft, which QEMU still reads as zeros. */
export const PAYLOAD_BLOCK_UNMAPPED_V095 = 5;
export const PAYLOAD_BLOCK_FULLY_PRESENT = 6;
export const PAYLOAD_BLOCK_PARTIALLY_PRESENT = 7;
/** Sector bitmap block states. */
export const SB_BLOCK_NOT_PRESENT = 0;
export const SB_BLOCK_PRESENT = 6;

export const BAT_STATE_MASK = 7n;
/** FileOffsetMB: bits 20-63, the block's offset in MiB. */
export const BAT_FILE_OFFSET_SHIFT = 20n;

export const LOG_SECTOR_BYTES = 4 * KiB;
export const LOG_ENTRY_SIGNATURE = 'loge';
export const LOG_ZERO_SIGNATURE = 'zero';
export const LOG_DESC_SIGNATURE = 'desc';
export const LOG_DATA_SIGNATURE = 'data';

export const STATE_NAMES: Record<number, string> = {
  [PAYLOAD_BLOCK_NOT_PRESENT]: 'not present',
  [PAYLOAD_BLOCK_UNDEFINED]: 'undefined',
  [PAYLOAD_BLOCK_ZERO]: 'zero',
  [PAYLOAD_BLOCK_UNMAPPED]: 'unmapped',
  [PAYLOAD_BLOCK_UNMAPPED_V095]: 'unmapped (0.95)',
  [PAYLOAD_BLOCK_FULLY_PRESENT]: 'fully present',
  [PAYLOAD_BLOCK_PARTIALLY_PRESENT]: 'partially present',
};
