/**
 * The btrfs on-disk layout both the probe (probe/btrfs.ts) and the driver
 * read: where the superblock and its mirrors are, the superblock's field
 * offsets, item types, tree ids, feature bits, block-group profiles and
 * checksum types. Names are the on-disk format's (struct btrfs_super_block,
 * btrfs_header, btrfs_key, BTRFS_*_KEY, BTRFS_BLOCK_GROUP_*). All integers
 * are little-endian.
 */

export const BTRFS_MAGIC = '_BHRfS_M';
export const SUPERBLOCK_SIZE = 4096;
/** The primary superblock and its two mirrors (a mirror exists only where the device is large enough). */
export const SUPERBLOCK_OFFSETS = [0x10000, 0x4000000, 0x4000000000] as const;
export const PRIMARY_SUPERBLOCK_OFFSET = SUPERBLOCK_OFFSETS[0];

/** Byte offsets inside struct btrfs_super_block. */
export const SB = {
  csum: 0x00, // 32 bytes
  fsid: 0x20, // 16
  bytenr: 0x30,
  flags: 0x38,
  magic: 0x40, // 8
  generation: 0x48,
  root: 0x50,
  chunk_root: 0x58,
  log_root: 0x60,
  log_root_transid: 0x68,
  total_bytes: 0x70,
  bytes_used: 0x78,
  root_dir_objectid: 0x80,
  num_devices: 0x88,
  sectorsize: 0x90,
  nodesize: 0x94,
  leafsize: 0x98,
  stripesize: 0x9c,
  sys_chunk_array_size: 0xa0,
  chunk_root_generation: 0xa4,
  compat_flags: 0xac,
  compat_ro_flags: 0xb4,
  incompat_flags: 0xbc,
  csum_type: 0xc4,
  root_level: 0xc6,
  chunk_root_level: 0xc7,
  log_root_level: 0xc8,
  dev_item: 0xc9, // struct btrfs_dev_item, 98 bytes
  label: 0x12b, // 256
  cache_generation: 0x22b,
  uuid_tree_generation: 0x233,
  metadata_uuid: 0x23b, // 16
  sys_chunk_array: 0x32b, // 2048
  super_roots: 0xb2b, // 4 x btrfs_root_backup
} as const;

export const LABEL_SIZE = 256;
export const SYS_CHUNK_ARRAY_SIZE = 2048;
/** The checksum covers the superblock after its 32-byte csum field. */
export const CSUM_SIZE = 32;

/** struct btrfs_dev_item offsets (relative to the item). */
export const DEV_ITEM = {
  devid: 0,
  total_bytes: 8,
  bytes_used: 16,
  io_align: 24,
  io_width: 28,
  sector_size: 32,
  type: 36,
  generation: 44,
  start_offset: 52,
  dev_group: 60,
  seek_speed: 64,
  bandwidth: 65,
  uuid: 66, // 16
  fsid: 82, // 16
  size: 98,
} as const;

/** struct btrfs_header (every tree block begins with one). */
export const HEADER = {
  csum: 0x00,
  fsid: 0x20,
  bytenr: 0x30,
  flags: 0x38,
  chunk_tree_uuid: 0x40,
  generation: 0x50,
  owner: 0x58,
  nritems: 0x60,
  level: 0x64,
  size: 0x65,
} as const;

/** struct btrfs_disk_key: objectid (u64), type (u8), offset (u64). */
export const DISK_KEY_SIZE = 17;
/** struct btrfs_item in a leaf: key, offset (u32, from the end of the header), size (u32). */
export const LEAF_ITEM_SIZE = 25;
/** struct btrfs_key_ptr in a node: key, blockptr (u64), generation (u64). */
export const KEY_PTR_SIZE = 33;
export const BTRFS_MAX_LEVEL = 8;

/** Item types (btrfs_key.type). */
export const KEY = {
  INODE_ITEM: 1,
  INODE_REF: 12,
  INODE_EXTREF: 13,
  XATTR_ITEM: 24,
  ORPHAN_ITEM: 48,
  DIR_LOG_ITEM: 60,
  DIR_LOG_INDEX: 72,
  DIR_ITEM: 84,
  DIR_INDEX: 96,
  EXTENT_DATA: 108,
  EXTENT_CSUM: 128,
  ROOT_ITEM: 132,
  ROOT_BACKREF: 144,
  ROOT_REF: 156,
  EXTENT_ITEM: 168,
  METADATA_ITEM: 169,
  BLOCK_GROUP_ITEM: 192,
  FREE_SPACE_INFO: 198,
  DEV_EXTENT: 204,
  DEV_ITEM: 216,
  CHUNK_ITEM: 228,
  QGROUP_STATUS: 240,
  TEMPORARY_ITEM: 248,
  PERSISTENT_ITEM: 249,
  UUID_SUBVOL: 251,
  UUID_RECEIVED_SUBVOL: 252,
  STRING_ITEM: 253,
} as const;

/** Well-known objectids (tree ids and special inodes). */
export const OBJECTID = {
  ROOT_TREE: 1n,
  EXTENT_TREE: 2n,
  CHUNK_TREE: 3n,
  DEV_TREE: 4n,
  FS_TREE: 5n,
  ROOT_TREE_DIR: 6n,
  CSUM_TREE: 7n,
  QUOTA_TREE: 8n,
  UUID_TREE: 9n,
  FREE_SPACE_TREE: 10n,
  BLOCK_GROUP_TREE: 11n,
  RAID_STRIPE_TREE: 12n,
  DEV_ITEMS: 1n,
  FIRST_CHUNK_TREE: 256n,
  FIRST_FREE: 256n,
  LAST_FREE: 0xffff_ffff_ffff_ff00n, // -256
  TREE_LOG: 0xffff_ffff_ffff_fffan, // -6
} as const;

/** The first inode of every FS tree: its root directory. */
export const FIRST_FREE_OBJECTID = 256;
/** The inode the kernel shows for a subvolume that is not reachable from a snapshot (an empty directory). */
export const EMPTY_SUBVOL_DIR_OBJECTID = 2;

/** Superblock compat_ro flags. */
export const COMPAT_RO = {
  FREE_SPACE_TREE: 0x1,
  FREE_SPACE_TREE_VALID: 0x2,
  VERITY: 0x4,
  BLOCK_GROUP_TREE: 0x8,
} as const;

/** Superblock incompat flags. */
export const INCOMPAT = {
  MIXED_BACKREF: 0x1,
  DEFAULT_SUBVOL: 0x2,
  MIXED_GROUPS: 0x4,
  COMPRESS_LZO: 0x8,
  COMPRESS_ZSTD: 0x10,
  BIG_METADATA: 0x20,
  EXTENDED_IREF: 0x40,
  RAID56: 0x80,
  SKINNY_METADATA: 0x100,
  NO_HOLES: 0x200,
  METADATA_UUID: 0x400,
  RAID1C34: 0x800,
  ZONED: 0x1000,
  EXTENT_TREE_V2: 0x2000,
  RAID_STRIPE_TREE: 0x4000,
  SIMPLE_QUOTA: 0x10000,
} as const;

/** What this reader understands; other incompat bits are refused by name. */
export const INCOMPAT_SUPPORTED =
  INCOMPAT.MIXED_BACKREF |
  INCOMPAT.DEFAULT_SUBVOL |
  INCOMPAT.MIXED_GROUPS |
  INCOMPAT.COMPRESS_LZO |
  INCOMPAT.COMPRESS_ZSTD |
  INCOMPAT.BIG_METADATA |
  INCOMPAT.EXTENDED_IREF |
  INCOMPAT.RAID56 |
  INCOMPAT.SKINNY_METADATA |
  INCOMPAT.NO_HOLES |
  INCOMPAT.METADATA_UUID |
  INCOMPAT.RAID1C34 |
  INCOMPAT.SIMPLE_QUOTA;

export const INCOMPAT_NAMES: Record<number, string> = {
  [INCOMPAT.ZONED]: 'zoned',
  [INCOMPAT.EXTENT_TREE_V2]: 'extent-tree-v2',
  [INCOMPAT.RAID_STRIPE_TREE]: 'raid-stripe-tree',
};

/** Block group / chunk type and profile bits. */
export const BLOCK_GROUP = {
  DATA: 0x1,
  SYSTEM: 0x2,
  METADATA: 0x4,
  RAID0: 0x8,
  RAID1: 0x10,
  DUP: 0x20,
  RAID10: 0x40,
  RAID5: 0x80,
  RAID6: 0x100,
  RAID1C3: 0x200,
  RAID1C4: 0x400,
} as const;
export const BLOCK_GROUP_TYPE_MASK = BLOCK_GROUP.DATA | BLOCK_GROUP.SYSTEM | BLOCK_GROUP.METADATA;
export const BLOCK_GROUP_PROFILE_MASK =
  BLOCK_GROUP.RAID0 | BLOCK_GROUP.RAID1 | BLOCK_GROUP.DUP | BLOCK_GROUP.RAID10 | BLOCK_GROUP.RAID5 | BLOCK_GROUP.RAID6 | BLOCK_GROUP.RAID1C3 | BLOCK_GROUP.RAID1C4;

export type Profile = 'single' | 'dup' | 'raid0' | 'raid1' | 'raid1c3' | 'raid1c4' | 'raid10' | 'raid5' | 'raid6';

/** One row of the kernel's btrfs_raid_array: what a profile needs and how many copies it keeps. */
export interface RaidAttributes {
  profile: Profile;
  /** Stripes on one device (DUP: 2). */
  devStripes: number;
  devsMin: number;
  ncopies: number;
  nparity: number;
}

export const RAID_ATTRIBUTES: Record<Profile, RaidAttributes> = {
  raid10: { profile: 'raid10', devStripes: 1, devsMin: 2, ncopies: 2, nparity: 0 },
  raid1: { profile: 'raid1', devStripes: 1, devsMin: 2, ncopies: 2, nparity: 0 },
  raid1c3: { profile: 'raid1c3', devStripes: 1, devsMin: 3, ncopies: 3, nparity: 0 },
  raid1c4: { profile: 'raid1c4', devStripes: 1, devsMin: 4, ncopies: 4, nparity: 0 },
  dup: { profile: 'dup', devStripes: 2, devsMin: 1, ncopies: 2, nparity: 0 },
  raid0: { profile: 'raid0', devStripes: 1, devsMin: 1, ncopies: 1, nparity: 0 },
  single: { profile: 'single', devStripes: 1, devsMin: 1, ncopies: 1, nparity: 0 },
  raid5: { profile: 'raid5', devStripes: 1, devsMin: 2, ncopies: 1, nparity: 1 },
  raid6: { profile: 'raid6', devStripes: 1, devsMin: 3, ncopies: 1, nparity: 2 },
};

/** The kernel's raid index order (BTRFS_RAID_RAID10 = 0 ... BTRFS_RAID_RAID1C4 = 8): statfs takes the data factor of the last non-empty one. */
export const RAID_INDEX_ORDER: readonly Profile[] = ['raid10', 'raid1', 'dup', 'raid0', 'single', 'raid5', 'raid6', 'raid1c3', 'raid1c4'];

/** The profile of a block group's flags; undefined for more than one profile bit. */
export function profileOf(flags: bigint | number): Profile | undefined {
  const bits = Number(BigInt(flags) & BigInt(BLOCK_GROUP_PROFILE_MASK));
  switch (bits) {
    case 0: return 'single';
    case BLOCK_GROUP.RAID0: return 'raid0';
    case BLOCK_GROUP.RAID1: return 'raid1';
    case BLOCK_GROUP.DUP: return 'dup';
    case BLOCK_GROUP.RAID10: return 'raid10';
    case BLOCK_GROUP.RAID5: return 'raid5';
    case BLOCK_GROUP.RAID6: return 'raid6';
    case BLOCK_GROUP.RAID1C3: return 'raid1c3';
    case BLOCK_GROUP.RAID1C4: return 'raid1c4';
    default: return undefined;
  }
}

/** The stripe length every chunk uses (BTRFS_STRIPE_LEN). */
export const STRIPE_LEN = 64 * 1024;

/** Superblock csum_type. */
export const CSUM_TYPE = { CRC32C: 0, XXHASH64: 1, SHA256: 2, BLAKE2B: 3 } as const;
export const CSUM_NAMES = ['crc32c', 'xxhash64', 'sha256', 'blake2b'] as const;
export const CSUM_LENGTHS = [4, 8, 32, 32] as const;

/** btrfs_file_extent_item.type */
export const FILE_EXTENT = { INLINE: 0, REG: 1, PREALLOC: 2 } as const;
/** btrfs_file_extent_item.compression */
export const COMPRESS = { NONE: 0, ZLIB: 1, LZO: 2, ZSTD: 3 } as const;
export const COMPRESS_NAMES = ['none', 'zlib', 'lzo', 'zstd'] as const;

/** btrfs_file_extent_item offsets: the inline data begins at `disk_bytenr`. */
export const FILE_EXTENT_ITEM = {
  generation: 0,
  ram_bytes: 8,
  compression: 16,
  encryption: 17,
  other_encoding: 18,
  type: 20,
  disk_bytenr: 21,
  disk_num_bytes: 29,
  offset: 37,
  num_bytes: 45,
  size: 53,
} as const;

/** struct btrfs_inode_item (160 bytes). */
export const INODE_ITEM = {
  generation: 0,
  transid: 8,
  size: 16,
  nbytes: 24,
  block_group: 32,
  nlink: 40,
  uid: 44,
  gid: 48,
  mode: 52,
  rdev: 56,
  flags: 64,
  sequence: 72,
  atime: 112,
  ctime: 124,
  mtime: 136,
  otime: 148,
  size_total: 160,
} as const;

/** struct btrfs_root_item offsets (the item may be the short pre-3.x form of 239 bytes). */
export const ROOT_ITEM = {
  inode: 0,
  generation: 160,
  root_dirid: 168,
  bytenr: 176,
  byte_limit: 184,
  bytes_used: 192,
  last_snapshot: 200,
  flags: 208,
  refs: 216,
  drop_progress: 220,
  drop_level: 237,
  level: 238,
  generation_v2: 239,
  uuid: 247,
  parent_uuid: 263,
  received_uuid: 279,
  ctransid: 295,
  otransid: 303,
  stransid: 311,
  rtransid: 319,
  ctime: 327,
  otime: 339,
  stime: 351,
  rtime: 363,
  size_short: 239,
  size: 439,
} as const;

/** btrfs_root_item.flags: a read-only subvolume (or snapshot). */
export const ROOT_SUBVOL_RDONLY = 0x1n;

/** struct btrfs_chunk (followed by num_stripes struct btrfs_stripe of 32 bytes). */
export const CHUNK_ITEM = {
  length: 0,
  owner: 8,
  stripe_len: 16,
  type: 24,
  io_align: 32,
  io_width: 36,
  sector_size: 40,
  num_stripes: 44,
  sub_stripes: 46,
  stripes: 48,
  stripe_size: 32, // devid u64, offset u64, dev_uuid [16]
} as const;

/** struct btrfs_block_group_item. */
export const BLOCK_GROUP_ITEM = { used: 0, chunk_objectid: 8, flags: 16, size: 24 } as const;

/** struct btrfs_dir_item: location key, transid, data_len, name_len, type, then name and data. */
export const DIR_ITEM = { location: 0, transid: 17, data_len: 25, name_len: 27, type: 29, size: 30 } as const;
/** btrfs_dir_item.type (BTRFS_FT_*). */
export const FT = { UNKNOWN: 0, REG_FILE: 1, DIR: 2, CHRDEV: 3, BLKDEV: 4, FIFO: 5, SOCK: 6, SYMLINK: 7, XATTR: 8 } as const;

/** The longest name (BTRFS_NAME_LEN), statfs's f_namelen. */
export const NAME_LEN = 255;
