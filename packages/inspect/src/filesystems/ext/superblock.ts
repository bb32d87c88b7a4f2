/**
 * The ext2/3/4 superblock: 1024 bytes at byte 1024 of the filesystem. Field
 * names are the on-disk ones (fs/ext4/ext4.h). Values that are 64-bit on disk
 * (blocks counts with INCOMPAT_64BIT) are combined as bigint and converted to
 * number explicitly, so an absurd value is an error, not a rounding.
 */
import { crc32c } from './checksum.ts';
import { ExtChecksumError, ExtCorruptError, ExtUnsupportedError } from './errors.ts';

import { COMPAT, EXT4_SUPER_MAGIC, INCOMPAT, RO_COMPAT, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE } from './layout.ts';

export { COMPAT, EXT4_SUPER_MAGIC, INCOMPAT, RO_COMPAT, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE } from './layout.ts';

/** Incompatible features whose on-disk layout this reader understands. */
const READABLE_INCOMPAT =
  INCOMPAT.FILETYPE |
  INCOMPAT.RECOVER |
  INCOMPAT.META_BG |
  INCOMPAT.EXTENTS |
  INCOMPAT.BIT64 |
  INCOMPAT.MMP |
  INCOMPAT.FLEX_BG |
  INCOMPAT.EA_INODE |
  INCOMPAT.CSUM_SEED |
  INCOMPAT.LARGEDIR |
  INCOMPAT.INLINE_DATA |
  INCOMPAT.ENCRYPT |
  INCOMPAT.CASEFOLD;

const INCOMPAT_NAMES: Record<number, string> = {
  [INCOMPAT.COMPRESSION]: 'compression',
  [INCOMPAT.JOURNAL_DEV]: 'journal_dev (this is an external journal device, not a filesystem)',
  [INCOMPAT.DIRDATA]: 'dirdata',
};

export interface Superblock {
  s_inodes_count: number;
  s_blocks_count: number;
  s_r_blocks_count: number;
  s_free_blocks_count: number;
  s_free_inodes_count: number;
  s_first_data_block: number;
  s_log_block_size: number;
  s_log_cluster_size: number;
  s_blocks_per_group: number;
  s_clusters_per_group: number;
  s_inodes_per_group: number;
  s_magic: number;
  s_state: number;
  s_rev_level: number;
  s_first_ino: number;
  s_inode_size: number;
  s_feature_compat: number;
  s_feature_incompat: number;
  s_feature_ro_compat: number;
  s_uuid: Buffer;
  s_volume_name: string;
  s_reserved_gdt_blocks: number;
  s_journal_uuid: Buffer;
  s_journal_inum: number;
  s_journal_dev: number;
  s_last_orphan: number;
  s_hash_seed: Buffer;
  s_def_hash_version: number;
  s_desc_size: number;
  s_first_meta_bg: number;
  s_min_extra_isize: number;
  /** EXT2_FLAGS_*: signed/unsigned directory hash, test filesystem. */
  s_flags: number;
  s_log_groups_per_flex: number;
  s_checksum_type: number;
  s_overhead_clusters: number;
  s_backup_bgs: [number, number];
  s_checksum_seed: number;
  s_orphan_file_inum: number;
  s_checksum: number;

  // Derived.
  blockSize: number;
  clusterBits: number;
  /** Descriptor size in bytes: 32, or s_desc_size with INCOMPAT_64BIT. */
  descSize: number;
  groupCount: number;
  /** Group descriptors per block. */
  descPerBlock: number;
  /** Blocks of the primary group descriptor table (s_gdb_count). */
  gdbCount: number;
  inodesPerBlock: number;
  /** Blocks of each group's inode table (s_itb_per_group). */
  itbPerGroup: number;
  /** Seed for every metadata_csum checksum (s_csum_seed). */
  csumSeed: number;
  metadataCsum: boolean;
}

export function hasCompat(sb: Superblock, f: number): boolean {
  return (sb.s_feature_compat & f) !== 0;
}
export function hasRoCompat(sb: Superblock, f: number): boolean {
  return (sb.s_feature_ro_compat & f) !== 0;
}
export function hasIncompat(sb: Superblock, f: number): boolean {
  return (sb.s_feature_incompat & f) !== 0;
}

/** True when the 1024 bytes look like an ext2/3/4 superblock (magic and sane geometry). */
export function isExtSuperblock(buf: Buffer): boolean {
  if (buf.length < 0x68) return false;
  if (buf.readUInt16LE(0x38) !== EXT4_SUPER_MAGIC) return false;
  const logBlock = buf.readUInt32LE(0x18);
  return logBlock <= 6 && buf.readUInt32LE(0x28) > 0 && buf.readUInt32LE(0x20) > 0;
}

/** A lo/hi pair of 32-bit words as bigint (hi only counts with INCOMPAT_64BIT). */
function u64(lo: number, hi: number, wide: boolean): bigint {
  return BigInt(lo) | (wide ? BigInt(hi) << 32n : 0n);
}

/**
 * Parse and validate a superblock. `deviceSize` bounds the geometry; a
 * metadata_csum mismatch throws ExtChecksumError.
 */
export function parseSuperblock(buf: Buffer, image: string, deviceSize: number, options: { retryable?: boolean } = {}): Superblock {
  const corrupt = (detail: string): never => {
    throw new ExtCorruptError(image, 'superblock', SUPERBLOCK_OFFSET, detail, options);
  };
  if (buf.length < SUPERBLOCK_SIZE) corrupt('shorter than 1024 bytes');
  const magic = buf.readUInt16LE(0x38);
  if (magic !== EXT4_SUPER_MAGIC) corrupt(`bad magic 0x${magic.toString(16)} (expected 0xef53): not an ext2/3/4 filesystem`);

  const incompat = buf.readUInt32LE(0x60);
  const roCompat = buf.readUInt32LE(0x64);
  const wide = (incompat & INCOMPAT.BIT64) !== 0;
  const metadataCsum = (roCompat & RO_COMPAT.METADATA_CSUM) !== 0;

  if (metadataCsum) {
    const type = buf.readUInt8(0x175);
    if (type !== 1) corrupt(`unknown s_checksum_type ${type} (1 = crc32c)`);
    const stored = buf.readUInt32LE(0x3fc);
    const computed = crc32c(0xffffffff, buf, 0, 0x3fc);
    if (stored !== computed) throw new ExtChecksumError(image, 'superblock', SUPERBLOCK_OFFSET, computed, stored, options);
  }

  const unknown = incompat & ~READABLE_INCOMPAT;
  if (unknown) {
    const names: string[] = [];
    for (let bit = 1; bit !== 0 && bit <= unknown; bit = (bit << 1) >>> 0) {
      if (unknown & bit) names.push(INCOMPAT_NAMES[bit] ?? `incompat feature 0x${bit.toString(16)}`);
    }
    throw new ExtUnsupportedError(image, names.join(', '));
  }

  const s_log_block_size = buf.readUInt32LE(0x18);
  // Linux mounts 1 KiB to 64 KiB blocks.
  if (s_log_block_size > 6) corrupt(`s_log_block_size ${s_log_block_size} is out of range (block size over 64 KiB)`);
  const blockSize = 1024 << s_log_block_size;
  const s_log_cluster_size = buf.readUInt32LE(0x1c);
  const bigalloc = (roCompat & RO_COMPAT.BIGALLOC) !== 0;
  if (bigalloc) {
    if (s_log_cluster_size < s_log_block_size || s_log_cluster_size - s_log_block_size > 16) {
      corrupt(`s_log_cluster_size ${s_log_cluster_size} is not compatible with s_log_block_size ${s_log_block_size}`);
    }
  }
  const clusterBits = bigalloc ? s_log_cluster_size - s_log_block_size : 0;

  // Block counts go past 2^32 with 64bit; as byte counts they must stay below 2^53 to be numbers.
  const blockCount = (lo: number, hi: number, what: string): number => {
    const v = u64(buf.readUInt32LE(lo), buf.readUInt32LE(hi), wide);
    if (v * BigInt(blockSize) > BigInt(Number.MAX_SAFE_INTEGER)) corrupt(`${what} ${v} blocks of ${blockSize} bytes is beyond 2^53 bytes`);
    return Number(v);
  };
  const s_blocks_count = blockCount(0x04, 0x150, 's_blocks_count');
  const s_r_blocks_count = blockCount(0x08, 0x154, 's_r_blocks_count');
  const s_free_blocks_count = blockCount(0x0c, 0x158, 's_free_blocks_count');
  const s_first_data_block = buf.readUInt32LE(0x14);
  const s_blocks_per_group = buf.readUInt32LE(0x20);
  const s_clusters_per_group = buf.readUInt32LE(0x24);
  const s_inodes_per_group = buf.readUInt32LE(0x28);
  const s_inodes_count = buf.readUInt32LE(0x00);
  const s_rev_level = buf.readUInt32LE(0x4c);

  if (s_blocks_count === 0) corrupt('s_blocks_count is 0');
  if (s_first_data_block >= s_blocks_count) corrupt(`s_first_data_block ${s_first_data_block} is past the end`);
  const clustersPerGroupExpected = s_blocks_per_group >>> clusterBits;
  if (s_blocks_per_group === 0 || s_blocks_per_group > blockSize * 8 << clusterBits) {
    corrupt(`s_blocks_per_group ${s_blocks_per_group} is out of range`);
  }
  if (bigalloc ? s_clusters_per_group !== clustersPerGroupExpected || s_clusters_per_group > blockSize * 8 : false) {
    corrupt(`s_clusters_per_group ${s_clusters_per_group} does not match s_blocks_per_group ${s_blocks_per_group}`);
  }
  if (s_inodes_per_group === 0 || s_inodes_per_group > blockSize * 8) corrupt(`s_inodes_per_group ${s_inodes_per_group} is out of range`);

  let s_inode_size = 128;
  let s_first_ino = 11;
  if (s_rev_level >= 1) {
    s_inode_size = buf.readUInt16LE(0x58);
    s_first_ino = buf.readUInt32LE(0x54);
  }
  if (s_inode_size < 128 || s_inode_size > blockSize || (s_inode_size & (s_inode_size - 1)) !== 0) {
    corrupt(`s_inode_size ${s_inode_size} is not a power of two between 128 and the block size`);
  }

  let descSize = 32;
  if (wide) {
    descSize = buf.readUInt16LE(0xfe);
    if (descSize < 64 || descSize > 1024 || (descSize & (descSize - 1)) !== 0) corrupt(`s_desc_size ${descSize} is invalid for a 64bit filesystem`);
  }

  const groupCount = Math.ceil((s_blocks_count - s_first_data_block) / s_blocks_per_group);
  if (groupCount === 0 || groupCount > 2 ** 32) corrupt(`group count ${groupCount} is out of range`);
  // The kernel's own consistency check: inodes_count must equal groups * inodes_per_group.
  if (s_inodes_count !== groupCount * s_inodes_per_group) {
    corrupt(`s_inodes_count ${s_inodes_count} is not ${groupCount} groups x ${s_inodes_per_group} inodes`);
  }
  const descPerBlock = blockSize / descSize;
  const gdbCount = Math.ceil(groupCount / descPerBlock);
  const inodesPerBlock = blockSize / s_inode_size;
  const itbPerGroup = Math.ceil(s_inodes_per_group / inodesPerBlock);

  if (s_blocks_count * blockSize > deviceSize) {
    // The kernel refuses such a filesystem at mount ("bad geometry: block count exceeds size of device").
    corrupt(`s_blocks_count ${s_blocks_count} x ${blockSize} bytes is larger than the device (${deviceSize} bytes); the image may be truncated`);
  }

  const s_uuid = Buffer.from(buf.subarray(0x68, 0x78));
  const incompatSeed = (incompat & INCOMPAT.CSUM_SEED) !== 0;
  const s_checksum_seed = buf.readUInt32LE(0x270);
  const csumSeed = incompatSeed ? s_checksum_seed : crc32c(0xffffffff, s_uuid);

  const nameBytes = buf.subarray(0x78, 0x88);
  const nul = nameBytes.indexOf(0);

  return {
    s_inodes_count,
    s_blocks_count,
    s_r_blocks_count,
    s_free_blocks_count,
    s_free_inodes_count: buf.readUInt32LE(0x10),
    s_first_data_block,
    s_log_block_size,
    s_log_cluster_size,
    s_blocks_per_group,
    s_clusters_per_group,
    s_inodes_per_group,
    s_magic: magic,
    s_state: buf.readUInt16LE(0x3a),
    s_rev_level,
    s_first_ino,
    s_inode_size,
    s_feature_compat: buf.readUInt32LE(0x5c),
    s_feature_incompat: incompat,
    s_feature_ro_compat: roCompat,
    s_uuid,
    s_volume_name: nameBytes.subarray(0, nul < 0 ? 16 : nul).toString('utf8'),
    s_reserved_gdt_blocks: buf.readUInt16LE(0xce),
    s_journal_uuid: Buffer.from(buf.subarray(0xd0, 0xe0)),
    s_journal_inum: buf.readUInt32LE(0xe0),
    s_journal_dev: buf.readUInt32LE(0xe4),
    s_last_orphan: buf.readUInt32LE(0xe8),
    s_hash_seed: Buffer.from(buf.subarray(0xec, 0xfc)),
    s_def_hash_version: buf.readUInt8(0xfc),
    s_desc_size: buf.readUInt16LE(0xfe),
    s_first_meta_bg: buf.readUInt32LE(0x104),
    s_min_extra_isize: buf.readUInt16LE(0x15c),
    s_flags: buf.readUInt32LE(0x160),
    s_log_groups_per_flex: buf.readUInt8(0x174),
    s_checksum_type: buf.readUInt8(0x175),
    s_overhead_clusters: buf.readUInt32LE(0x248),
    s_backup_bgs: [buf.readUInt32LE(0x24c), buf.readUInt32LE(0x250)],
    s_checksum_seed,
    s_orphan_file_inum: buf.readUInt32LE(0x280),
    s_checksum: buf.readUInt32LE(0x3fc),
    blockSize,
    clusterBits,
    descSize,
    groupCount,
    descPerBlock,
    gdbCount,
    inodesPerBlock,
    itbPerGroup,
    csumSeed,
    metadataCsum,
  };
}

/** The filesystem UUID in the usual 8-4-4-4-12 form. */
export function formatUuid(uuid: Buffer): string {
  const h = uuid.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** ext4_bg_has_super: does group `g` hold a superblock (primary or backup)? */
export function groupHasSuper(sb: Superblock, g: number): boolean {
  if (g === 0) return true;
  if (hasCompat(sb, COMPAT.SPARSE_SUPER2)) return g === sb.s_backup_bgs[0] || g === sb.s_backup_bgs[1];
  if (g <= 1 || !hasRoCompat(sb, RO_COMPAT.SPARSE_SUPER)) return true;
  if ((g & 1) === 0) return false;
  return isPowerOf(g, 3) || isPowerOf(g, 5) || isPowerOf(g, 7);
}

function isPowerOf(n: number, base: number): boolean {
  let p = base;
  while (p < n) p *= base;
  return p === n;
}

/** ext4_bg_num_gdb: how many group-descriptor blocks group `g` carries. */
export function groupDescriptorBlocks(sb: Superblock, g: number): number {
  const metagroup = Math.floor(g / sb.descPerBlock);
  if (!hasIncompat(sb, INCOMPAT.META_BG) || metagroup < sb.s_first_meta_bg) {
    if (!groupHasSuper(sb, g)) return 0;
    return hasIncompat(sb, INCOMPAT.META_BG) ? sb.s_first_meta_bg : sb.gdbCount;
  }
  const first = metagroup * sb.descPerBlock;
  const last = first + sb.descPerBlock - 1;
  return g === first || g === first + 1 || g === last ? 1 : 0;
}

/** First block of group `g`. */
export function groupFirstBlock(sb: Superblock, g: number): number {
  return sb.s_first_data_block + g * sb.s_blocks_per_group;
}
