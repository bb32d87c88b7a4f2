/**
 * The regf format's one table of on-disk offsets, signatures, flags and
 * limits: the base block, hive bins, cells and the records they hold. Field
 * names follow the format's own terms (the Windows registry file format
 * specification by M. Suhanov, and the kernel's names where it has them:
 * CM_KEY_NODE, CM_KEY_VALUE, HBIN, ...). Every parser reads its offsets from
 * here, so one place says where a field lives.
 *
 * Offsets inside records are relative to the cell data (after the 4-byte
 * cell size). Cell offsets ("cell indexes") are relative to the start of the
 * hive bins data, which begins right after the 4096-byte base block.
 */

/** Size of the base block; hive bins data starts here, so file offset = HBINS_START + cell offset. */
export const BASE_BLOCK_SIZE = 4096;
export const HBINS_START = BASE_BLOCK_SIZE;
/** Hive bins are multiples of this; Windows tracks dirtiness in these pages too. */
export const HBIN_ALIGN = 4096;
/** Cells are padded to this (HCELL_PAD). */
export const CELL_ALIGN = 8;
/** The "no cell" index (HCELL_NIL). */
export const CELL_NIL = 0xffffffff;

export const BASE_BLOCK = {
  signature: 0x00, // "regf"
  primarySequence: 0x04,
  secondarySequence: 0x08,
  lastWritten: 0x0c, // FILETIME
  majorVersion: 0x14,
  minorVersion: 0x18,
  fileType: 0x1c,
  fileFormat: 0x20,
  rootCell: 0x24,
  hiveBinsDataSize: 0x28,
  clusteringFactor: 0x2c,
  fileName: 0x30, // 64 bytes of UTF-16LE
  fileNameLength: 64,
  checksum: 0x1fc, // XOR-32 of the 508 bytes before it
  checksummedLength: 0x1fc,
} as const;
export const REGF_SIGNATURE = 'regf';

/** Base block `fileType`: a primary file, or one of the transaction log kinds (refused as hives). */
export const FILE_TYPE = { primary: 0, log: 1, logAlternate: 2, logNew: 6 } as const;
/** Base block `fileFormat`: 1, "direct memory load", is the only one. */
export const FILE_FORMAT_DIRECT_MEMORY_LOAD = 1;
export const MAJOR_VERSION = 1;
/** Minor versions Windows has written: 3 (NT 4), 4 (big data), 5 (XP and later), 6 (Windows 10 and later). 2 is NT 3.5. */
export const KNOWN_MINOR_VERSIONS: readonly number[] = [2, 3, 4, 5, 6];

export const HBIN = {
  signature: 0x00, // "hbin"
  offset: 0x04, // of this bin, relative to the hive bins data
  size: 0x08,
  timestamp: 0x14, // FILETIME, first bin only (backup of the base block's)
  headerSize: 0x20,
} as const;
export const HBIN_SIGNATURE = 'hbin';

/** Two-letter signatures at the start of cell data. */
export const SIGNATURE = {
  keyNode: 'nk',
  keyValue: 'vk',
  keySecurity: 'sk',
  indexLeaf: 'li',
  fastLeaf: 'lf',
  hashLeaf: 'lh',
  indexRoot: 'ri',
  bigData: 'db',
} as const;

/** CM_KEY_NODE. */
export const NK = {
  signature: 0x00,
  flags: 0x02,
  lastWritten: 0x04, // FILETIME
  accessBits: 0x0c,
  parent: 0x10,
  subkeyCount: 0x14,
  volatileSubkeyCount: 0x18,
  subkeyList: 0x1c,
  volatileSubkeyList: 0x20,
  valueCount: 0x24,
  valueList: 0x28,
  security: 0x2c,
  className: 0x30,
  maxNameLength: 0x34,
  maxClassLength: 0x38,
  maxValueNameLength: 0x3c,
  maxValueDataLength: 0x40,
  workVar: 0x44,
  nameLength: 0x48,
  classLength: 0x4a,
  name: 0x4c,
} as const;

export const KEY_FLAGS = {
  volatile: 0x0001,
  hiveExit: 0x0002,
  hiveEntry: 0x0004, // the root key of this hive
  noDelete: 0x0008,
  symLink: 0x0010,
  compressedName: 0x0020, // name is one byte per character (Latin-1), else UTF-16LE
  predefinedHandle: 0x0040,
} as const;

/** CM_KEY_VALUE. */
export const VK = {
  signature: 0x00,
  nameLength: 0x02,
  dataLength: 0x04, // top bit: data is stored in the dataOffset field itself
  dataOffset: 0x08,
  type: 0x0c,
  flags: 0x10,
  name: 0x14,
} as const;
export const VALUE_FLAGS = { compressedName: 0x0001 } as const;
/** Set in `dataLength` when the (at most 4 bytes of) data sit in `dataOffset` (CM_KEY_VALUE_SPECIAL_SIZE). */
export const DATA_RESIDENT = 0x80000000;

/** Subkey lists: signature, count, then elements of 4 (li, ri) or 8 (lf, lh) bytes. */
export const LIST = { signature: 0x00, count: 0x02, elements: 0x04 } as const;

/** CM_KEY_SECURITY. */
export const SK = {
  signature: 0x00,
  flink: 0x04,
  blink: 0x08,
  referenceCount: 0x0c,
  descriptorLength: 0x10,
  descriptor: 0x14,
} as const;

/** CM_BIG_DATA. */
export const DB = { signature: 0x00, segmentCount: 0x02, segmentList: 0x04, size: 0x08 } as const;
/** Every big-data segment but the last holds exactly this many bytes (CM_KEY_VALUE_BIG). */
export const BIG_DATA_SEGMENT_SIZE = 16344;

/** Value types (REG_*). */
export const REG = {
  NONE: 0,
  SZ: 1,
  EXPAND_SZ: 2,
  BINARY: 3,
  DWORD: 4,
  DWORD_BIG_ENDIAN: 5,
  LINK: 6,
  MULTI_SZ: 7,
  RESOURCE_LIST: 8,
  FULL_RESOURCE_DESCRIPTOR: 9,
  RESOURCE_REQUIREMENTS_LIST: 10,
  QWORD: 11,
} as const;

/** Windows' own bounds, used to bound what a hostile hive can make us do. */
export const WINDOWS_LIMITS = {
  /** Key names: 255 characters (stored as up to 510 bytes of UTF-16). */
  maxKeyNameBytes: 510,
  /** Value names: 16383 characters. */
  maxValueNameBytes: 32767,
  /** Keys nest at most 512 levels deep. */
  maxDepth: 512,
} as const;
