/**
 * The ext2/3/4 on-disk layout both the probe (probe/ext.ts) and the driver
 * read: where the superblock is, the offsets of the fields the probe looks
 * at, the feature bits, and the one rule that names a filesystem ext2, ext3,
 * ext4, ext4dev or jbd. Field names and offsets are fs/ext4/ext4.h's.
 */

export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;
export const EXT4_SUPER_MAGIC = 0xef53;

/** Byte offsets inside the superblock. */
export const SB = {
  s_inodes_count: 0x00,
  s_log_block_size: 0x18,
  s_rev_level: 0x4c,
  s_magic: 0x38,
  s_minor_rev_level: 0x3e,
  s_feature_compat: 0x5c,
  s_feature_incompat: 0x60,
  s_feature_ro_compat: 0x64,
  s_uuid: 0x68,
  s_volume_name: 0x78,
  s_journal_uuid: 0xd0,
  s_flags: 0x160,
} as const;

export const COMPAT = {
  DIR_PREALLOC: 0x1,
  IMAGIC_INODES: 0x2,
  HAS_JOURNAL: 0x4,
  EXT_ATTR: 0x8,
  RESIZE_INODE: 0x10,
  DIR_INDEX: 0x20,
  SPARSE_SUPER2: 0x200,
  FAST_COMMIT: 0x400,
  STABLE_INODES: 0x800,
  ORPHAN_FILE: 0x1000,
} as const;

export const RO_COMPAT = {
  SPARSE_SUPER: 0x1,
  LARGE_FILE: 0x2,
  BTREE_DIR: 0x4,
  HUGE_FILE: 0x8,
  GDT_CSUM: 0x10,
  DIR_NLINK: 0x20,
  EXTRA_ISIZE: 0x40,
  HAS_SNAPSHOT: 0x80,
  QUOTA: 0x100,
  BIGALLOC: 0x200,
  METADATA_CSUM: 0x400,
  REPLICA: 0x800,
  READONLY: 0x1000,
  PROJECT: 0x2000,
  SHARED_BLOCKS: 0x4000,
  VERITY: 0x8000,
  ORPHAN_PRESENT: 0x10000,
} as const;

export const INCOMPAT = {
  COMPRESSION: 0x1,
  FILETYPE: 0x2,
  RECOVER: 0x4,
  JOURNAL_DEV: 0x8,
  META_BG: 0x10,
  EXTENTS: 0x40,
  BIT64: 0x80,
  MMP: 0x100,
  FLEX_BG: 0x200,
  EA_INODE: 0x400,
  DIRDATA: 0x1000,
  CSUM_SEED: 0x2000,
  LARGEDIR: 0x4000,
  INLINE_DATA: 0x8000,
  ENCRYPT: 0x10000,
  CASEFOLD: 0x20000,
} as const;

/** s_flags bits. */
export const FLAGS = {
  SIGNED_HASH: 0x1,
  UNSIGNED_HASH: 0x2,
  TEST_FILESYS: 0x4,
} as const;

export interface ExtFeatures {
  compat: number;
  incompat: number;
  roCompat: number;
  flags: number;
}

/** Features the ext2 and ext3 drivers of old understood; anything else means ext4. */
const EXT2_INCOMPAT_SUPP = INCOMPAT.FILETYPE | INCOMPAT.META_BG;
const EXT3_INCOMPAT_SUPP = INCOMPAT.FILETYPE | INCOMPAT.RECOVER | INCOMPAT.META_BG;
const EXT23_RO_COMPAT_SUPP = RO_COMPAT.SPARSE_SUPER | RO_COMPAT.LARGE_FILE | RO_COMPAT.BTREE_DIR;

/** The blkid types that are ext filesystems the driver reads. */
export const EXT_TYPES = ['ext2', 'ext3', 'ext4', 'ext4dev'] as const;
export type ExtType = (typeof EXT_TYPES)[number] | 'jbd';

/**
 * libblkid's choice between jbd, ext4dev, ext4, ext3 and ext2; undefined when
 * none of its probes accepts the flags (no journal but needs_recovery). A
 * filesystem marked "test_fs" (tune2fs -E test_fs) is ext4dev, as blkid says.
 */
export function extTypeFromFeatures(f: ExtFeatures): ExtType | undefined {
  if (f.incompat & INCOMPAT.JOURNAL_DEV) return 'jbd';
  const beyondExt3 = (f.roCompat & ~EXT23_RO_COMPAT_SUPP) !== 0 || (f.incompat & ~EXT3_INCOMPAT_SUPP) !== 0;
  if (f.flags & FLAGS.TEST_FILESYS) return 'ext4dev';
  if (beyondExt3) return 'ext4';
  if (f.compat & COMPAT.HAS_JOURNAL) return 'ext3';
  const beyondExt2 = (f.roCompat & ~EXT23_RO_COMPAT_SUPP) !== 0 || (f.incompat & ~EXT2_INCOMPAT_SUPP) !== 0;
  return beyondExt2 ? undefined : 'ext2';
}

/** Whether an ext2 driver could mount it too (blkid's SEC_TYPE=ext2 for ext3/ext4 without ext4-only incompat features). */
export function alsoExt2(f: ExtFeatures): boolean {
  return (f.incompat & ~EXT2_INCOMPAT_SUPP) === 0;
}

/** The feature words of a superblock (1024 bytes at SUPERBLOCK_OFFSET). */
export function featuresOf(sb: Buffer): ExtFeatures {
  return {
    compat: sb.readUInt32LE(SB.s_feature_compat),
    incompat: sb.readUInt32LE(SB.s_feature_incompat),
    roCompat: sb.readUInt32LE(SB.s_feature_ro_compat),
    flags: sb.readUInt32LE(SB.s_flags),
  };
}
