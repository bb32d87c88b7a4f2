/**
 * The NTFS on-disk layout both the probe (probe/ntfs.ts) and the driver read:
 * the boot sector's BIOS parameter block, the MFT record and attribute
 * headers, the system files' record numbers, attribute type codes and the
 * flag words. Names follow the NTFS documentation as ntfs-3g's layout.h and
 * the Linux ntfs3 driver spell them (oem_id, mft_lcn, attrs_offset, ...).
 */

/** "NTFS    " at byte 3 of the boot sector. */
export const NTFS_OEM_ID = 'NTFS    ';

/** Byte offsets in the boot sector. */
export const BOOT = {
  oem_id: 0x03,
  bytes_per_sector: 0x0b,
  sectors_per_cluster: 0x0d,
  reserved_sectors: 0x0e,
  fats: 0x10,
  root_entries: 0x11,
  sectors: 0x13,
  media_type: 0x15,
  sectors_per_fat: 0x16,
  large_sectors: 0x20,
  number_of_sectors: 0x28,
  mft_lcn: 0x30,
  mftmirr_lcn: 0x38,
  clusters_per_mft_record: 0x40,
  clusters_per_index_record: 0x44,
  volume_serial_number: 0x48,
  end_of_sector_marker: 0x1fe,
} as const;

export const BOOT_SECTOR_SIZE = 512;
/** ntfs-3g refuses clusters over 2 MiB (NTFS_MAX_CLUSTER_SIZE). */
export const MAX_CLUSTER_SIZE = 2 * 1024 * 1024;
/** Records (MFT, INDX) are protected in strides of 512 bytes whatever the sector size. */
export const NTFS_BLOCK_SIZE = 512;

export function hasNtfsOemId(boot: Buffer): boolean {
  return boot.length >= BOOT.oem_id + 8 && boot.toString('latin1', BOOT.oem_id, BOOT.oem_id + 8) === NTFS_OEM_ID;
}

/** sectors_per_cluster: 1..128 as is, 240..253 (Windows for clusters over 64 KiB) as 2^(256 - value); undefined when neither. */
export function decodeSectorsPerCluster(raw: number, maxCode = 253): number | undefined {
  if (raw > 0 && raw <= 128 && (raw & (raw - 1)) === 0) return raw;
  if (raw >= 240 && raw <= maxCode) return 2 ** (256 - raw);
  return undefined;
}

/**
 * clusters_per_mft_record / clusters_per_index_record: a positive count of
 * clusters (1..64, a power of two), or a negative log2 of the size in bytes
 * (0xe1..0xf7 as a signed byte: 2^9 .. 2^31). Undefined when neither.
 */
export function decodeRecordSize(raw: number, clusterSize: number): number | undefined {
  const signed = raw > 127 ? raw - 256 : raw;
  if (signed < 0) {
    if (raw < 0xe1 || raw > 0xf7) return undefined;
    return 2 ** -signed;
  }
  if (![1, 2, 4, 8, 16, 32, 64].includes(signed)) return undefined;
  return signed * clusterSize;
}

/** The blkid UUID of an NTFS volume: the 64-bit serial number as 16 upper-case hex digits. */
export function formatSerialNumber(serial: bigint): string | undefined {
  return serial === 0n ? undefined : serial.toString(16).toUpperCase().padStart(16, '0');
}

// ---- multi-sector protected records (FILE, INDX, RSTR) ------------------------

export const RECORD = {
  magic: 0x00,
  usa_ofs: 0x04,
  usa_count: 0x06,
} as const;

export const MAGIC_FILE = 'FILE';
export const MAGIC_INDX = 'INDX';
export const MAGIC_BAAD = 'BAAD';
export const MAGIC_RSTR = 'RSTR';
export const MAGIC_CHKD = 'CHKD';

// ---- MFT records --------------------------------------------------------------

/** Byte offsets in an MFT record header. */
export const MFT = {
  lsn: 0x08,
  sequence_number: 0x10,
  link_count: 0x12,
  attrs_offset: 0x14,
  flags: 0x16,
  bytes_in_use: 0x18,
  bytes_allocated: 0x1c,
  base_mft_record: 0x20,
  next_attr_instance: 0x28,
  /** NTFS 3.1 only. */
  mft_record_number: 0x2c,
} as const;

export const MFT_RECORD_FLAGS = {
  IN_USE: 0x0001,
  IS_DIRECTORY: 0x0002,
  /** In $Extend files ($Quota, $ObjId, $Reparse): the record has a view index. */
  IS_4: 0x0004,
  IS_VIEW_INDEX: 0x0008,
} as const;

/** Record numbers of the system files. */
export const FILE_MFT = 0;
export const FILE_MFTMIRR = 1;
export const FILE_LOGFILE = 2;
export const FILE_VOLUME = 3;
export const FILE_ATTRDEF = 4;
export const FILE_ROOT = 5;
export const FILE_BITMAP = 6;
export const FILE_BOOT = 7;
export const FILE_BADCLUS = 8;
export const FILE_SECURE = 9;
export const FILE_UPCASE = 10;
export const FILE_EXTEND = 11;
/** The first record number of an ordinary file; below it (root excepted) are metadata files. */
export const FILE_FIRST_USER = 16;

/** An MFT reference: 48-bit record number, 16-bit sequence number. */
export function mftRefRecord(ref: bigint): number {
  return Number(ref & 0xffff_ffff_ffffn);
}
export function mftRefSequence(ref: bigint): number {
  return Number(ref >> 48n);
}

// ---- attributes ----------------------------------------------------------------

export const ATTR_TYPE = {
  STANDARD_INFORMATION: 0x10,
  ATTRIBUTE_LIST: 0x20,
  FILE_NAME: 0x30,
  OBJECT_ID: 0x40,
  SECURITY_DESCRIPTOR: 0x50,
  VOLUME_NAME: 0x60,
  VOLUME_INFORMATION: 0x70,
  DATA: 0x80,
  INDEX_ROOT: 0x90,
  INDEX_ALLOCATION: 0xa0,
  BITMAP: 0xb0,
  REPARSE_POINT: 0xc0,
  EA_INFORMATION: 0xd0,
  EA: 0xe0,
  PROPERTY_SET: 0xf0,
  LOGGED_UTILITY_STREAM: 0x100,
  END: 0xffffffff,
} as const;

/** Byte offsets in an attribute record header (common, then resident, then non-resident). */
export const ATTR = {
  type: 0x00,
  length: 0x04,
  non_resident: 0x08,
  name_length: 0x09,
  name_offset: 0x0a,
  flags: 0x0c,
  instance: 0x0e,
  // resident
  value_length: 0x10,
  value_offset: 0x14,
  resident_flags: 0x16,
  // non-resident
  lowest_vcn: 0x10,
  highest_vcn: 0x18,
  mapping_pairs_offset: 0x20,
  compression_unit: 0x22,
  allocated_size: 0x28,
  data_size: 0x30,
  initialized_size: 0x38,
  /** Only when the attribute is compressed or sparse (a 72-byte header). */
  compressed_size: 0x40,
} as const;

export const RESIDENT_HEADER_SIZE = 0x18;
export const NON_RESIDENT_HEADER_SIZE = 0x40;
export const COMPRESSED_HEADER_SIZE = 0x48;

/** Attribute record flags. */
export const ATTR_FLAGS = {
  COMPRESSION_MASK: 0x00ff,
  IS_COMPRESSED: 0x0001,
  IS_ENCRYPTED: 0x4000,
  IS_SPARSE: 0x8000,
} as const;

/** The file attribute flags of $STANDARD_INFORMATION and $FILE_NAME. */
export const FILE_ATTR = {
  READONLY: 0x0001,
  HIDDEN: 0x0002,
  SYSTEM: 0x0004,
  DIRECTORY: 0x0010,
  ARCHIVE: 0x0020,
  DEVICE: 0x0040,
  NORMAL: 0x0080,
  TEMPORARY: 0x0100,
  SPARSE_FILE: 0x0200,
  REPARSE_POINT: 0x0400,
  COMPRESSED: 0x0800,
  OFFLINE: 0x1000,
  NOT_CONTENT_INDEXED: 0x2000,
  ENCRYPTED: 0x4000,
  RECALL_ON_OPEN: 0x40000,
  /** In $FILE_NAME: the file is a directory (has an $I30 index). */
  I30_INDEX_PRESENT: 0x10000000,
  VIEW_INDEX_PRESENT: 0x20000000,
} as const;

/** $STANDARD_INFORMATION offsets. Version 1.2 stops at 48 bytes; 3.x has 72. */
export const SI = {
  creation_time: 0x00,
  last_data_change_time: 0x08,
  last_mft_change_time: 0x10,
  last_access_time: 0x18,
  file_attributes: 0x20,
  owner_id: 0x30,
  security_id: 0x34,
  quota_charged: 0x38,
  usn: 0x40,
} as const;
export const SI_V1_SIZE = 48;
export const SI_V3_SIZE = 72;

/** $FILE_NAME offsets. */
export const FN = {
  parent_directory: 0x00,
  creation_time: 0x08,
  last_data_change_time: 0x10,
  last_mft_change_time: 0x18,
  last_access_time: 0x20,
  allocated_size: 0x28,
  data_size: 0x30,
  file_attributes: 0x38,
  reparse_point_tag: 0x3c,
  file_name_length: 0x40,
  file_name_type: 0x41,
  file_name: 0x42,
} as const;

/** $FILE_NAME namespaces (file_name_type). */
export const FILE_NAME_POSIX = 0;
export const FILE_NAME_WIN32 = 1;
export const FILE_NAME_DOS = 2;
export const FILE_NAME_WIN32_AND_DOS = 3;

/** $VOLUME_INFORMATION offsets and flags. */
export const VOLUME_INFORMATION = { major_ver: 0x08, minor_ver: 0x09, flags: 0x0a } as const;
export const VOLUME_FLAGS = {
  IS_DIRTY: 0x0001,
  RESIZE_LOG_FILE: 0x0002,
  UPGRADE_ON_MOUNT: 0x0004,
  MOUNTED_ON_NT4: 0x0008,
  DELETE_USN_UNDERWAY: 0x0010,
  REPAIR_OBJECT_ID: 0x0020,
  CHKDSK_UNDERWAY: 0x4000,
  MODIFIED_BY_CHKDSK: 0x8000,
} as const;

// ---- indexes -------------------------------------------------------------------

/** $INDEX_ROOT value: the index's own header, then an index header. */
export const INDEX_ROOT = { type: 0x00, collation_rule: 0x04, index_block_size: 0x08, clusters_per_index_block: 0x0c, index: 0x10 } as const;
/** An index header (in $INDEX_ROOT at 0x10, in an INDX block at 0x18): offsets relative to itself. */
export const INDEX_HEADER = { entries_offset: 0x00, index_length: 0x04, allocated_size: 0x08, ih_flags: 0x0c, size: 0x10 } as const;
/** INDX block header. */
export const INDEX_BLOCK = { index_block_vcn: 0x10, index: 0x18 } as const;
/** An index entry. */
export const INDEX_ENTRY = {
  indexed_file: 0x00,
  data_offset: 0x00,
  data_length: 0x02,
  length: 0x08,
  key_length: 0x0a,
  ie_flags: 0x0c,
  key: 0x10,
} as const;
export const INDEX_ENTRY_FLAGS = { NODE: 0x01, END: 0x02 } as const;
export const INDEX_HEADER_FLAGS = { LARGE_INDEX: 0x01 } as const;

export const COLLATION = {
  BINARY: 0x00,
  FILE_NAME: 0x01,
  UNICODE_STRING: 0x02,
  NTOFS_ULONG: 0x10,
  NTOFS_SID: 0x11,
  NTOFS_SECURITY_HASH: 0x12,
  NTOFS_ULONGS: 0x13,
} as const;

/** "$I30", the name of a directory's filename index. */
export const I30 = '$I30';

// ---- reparse points ---------------------------------------------------------------

export const REPARSE_TAG = {
  MOUNT_POINT: 0xa0000003,
  HSM: 0xc0000004,
  HSM2: 0x80000006,
  SIS: 0x80000007,
  WIM: 0x80000008,
  CSV: 0x80000009,
  DFS: 0x8000000a,
  SYMLINK: 0xa000000c,
  DFSR: 0x80000012,
  DEDUP: 0x80000013,
  NFS: 0x80000014,
  DFM: 0x80000016,
  WOF: 0x80000017,
  WCI: 0x80000018,
  CLOUD: 0x9000001a,
  APPEXECLINK: 0x8000001b,
  GVFS: 0x9000001c,
  LX_SYMLINK: 0xa000001d,
  AF_UNIX: 0x80000023,
  LX_FIFO: 0x80000024,
  LX_CHR: 0x80000025,
  LX_BLK: 0x80000026,
} as const;
export const REPARSE_TAG_IS_MICROSOFT = 0x80000000;
/** ntfs-3g picks a reparse plugin by the tag without bits 12..15 (cloud tags differ only there). */
export const REPARSE_PLUGIN_SELECT = 0xffff0fff;

/** The names Windows gives the reparse tags (IO_REPARSE_TAG_*), for messages and `reparse` info. */
export const REPARSE_TAG_NAMES: Record<number, string> = Object.fromEntries(Object.entries(REPARSE_TAG).map(([k, v]) => [v, k]));

export function reparseTagName(tag: number): string {
  const known = REPARSE_TAG_NAMES[tag] ?? (((tag & REPARSE_PLUGIN_SELECT) >>> 0) === REPARSE_TAG.CLOUD ? 'CLOUD' : undefined);
  return known ?? `0x${tag.toString(16).padStart(8, '0')}`;
}
