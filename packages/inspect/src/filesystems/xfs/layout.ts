/**
 * The XFS on-disk layout both the probe (probe/xfs.ts) and the driver read:
 * byte offsets of the superblock, AG header, inode core, btree block and
 * directory/attribute block fields, magic numbers and feature bits. Every
 * field is big-endian unless its name says otherwise (the CRCs are stored
 * little-endian). Names are those of the XFS on-disk format documentation
 * (xfs_format.h, xfs_da_format.h, xfs_log_format.h).
 */

export const XFS_SB_MAGIC = 0x58465342; // 'XFSB'

/** The blkid types the driver reads. */
export const XFS_TYPES = ['xfs'] as const;

/** The superblock occupies the first sector of every AG; only AG 0's is authoritative. */
export const SB = {
  sb_magicnum: 0,
  sb_blocksize: 4,
  sb_dblocks: 8,
  sb_rblocks: 16,
  sb_rextents: 24,
  sb_uuid: 32,
  sb_logstart: 48,
  sb_rootino: 56,
  sb_rbmino: 64,
  sb_rsumino: 72,
  sb_rextsize: 80,
  sb_agblocks: 84,
  sb_agcount: 88,
  sb_rbmblocks: 92,
  sb_logblocks: 96,
  sb_versionnum: 100,
  sb_sectsize: 102,
  sb_inodesize: 104,
  sb_inopblock: 106,
  sb_fname: 108,
  sb_blocklog: 120,
  sb_sectlog: 121,
  sb_inodelog: 122,
  sb_inopblog: 123,
  sb_agblklog: 124,
  sb_rextslog: 125,
  sb_inprogress: 126,
  sb_imax_pct: 127,
  sb_icount: 128,
  sb_ifree: 136,
  sb_fdblocks: 144,
  sb_frextents: 152,
  sb_uquotino: 160,
  sb_gquotino: 168,
  sb_qflags: 176,
  sb_flags: 178,
  sb_shared_vn: 179,
  sb_inoalignmt: 180,
  sb_unit: 184,
  sb_width: 188,
  sb_dirblklog: 192,
  sb_logsectlog: 193,
  sb_logsectsize: 194,
  sb_logsunit: 196,
  sb_features2: 200,
  sb_bad_features2: 204,
  sb_features_compat: 208,
  sb_features_ro_compat: 212,
  sb_features_incompat: 216,
  sb_features_log_incompat: 220,
  sb_crc: 224,
  sb_spino_align: 228,
  sb_pquotino: 232,
  sb_lsn: 240,
  sb_meta_uuid: 248,
} as const;

/** Bytes of the v5 superblock structure (the CRC covers the whole sector). */
export const SB_V5_SIZE = 264;
export const SB_LABEL_LENGTH = 12;

/** sb_versionnum: the low nibble is the version, the rest feature bits. */
export const VERSION = {
  NUMBITS: 0x000f,
  V4: 4,
  V5: 5,
  ATTRBIT: 0x0010,
  NLINKBIT: 0x0020,
  QUOTABIT: 0x0040,
  ALIGNBIT: 0x0080,
  DALIGNBIT: 0x0100,
  SHAREDBIT: 0x0200,
  LOGV2BIT: 0x0400,
  SECTORBIT: 0x0800,
  EXTFLGBIT: 0x1000,
  DIRV2BIT: 0x2000,
  BORGBIT: 0x4000, // ASCII-only case-insensitive names
  MOREBITSBIT: 0x8000,
} as const;

/** sb_features2 (meaningful with VERSION.MOREBITSBIT). */
export const VERSION2 = {
  LAZYSBCOUNTBIT: 0x02,
  ATTR2BIT: 0x08,
  PARENTBIT: 0x10,
  PROJID32BIT: 0x80,
  CRCBIT: 0x100,
  FTYPE: 0x200,
} as const;
export const VERSION2_OKBITS = VERSION2.LAZYSBCOUNTBIT | VERSION2.ATTR2BIT | VERSION2.PROJID32BIT | VERSION2.FTYPE;

/** v5 read-only-compatible features: a reader may ignore them. */
export const RO_COMPAT = {
  FINOBT: 1 << 0,
  RMAPBT: 1 << 1,
  REFLINK: 1 << 2,
  INOBTCNT: 1 << 3,
} as const;

/** v5 incompatible features: a reader must understand every one that is set. */
export const INCOMPAT = {
  FTYPE: 1 << 0,
  SPINODES: 1 << 1,
  META_UUID: 1 << 2,
  BIGTIME: 1 << 3,
  NEEDSREPAIR: 1 << 4,
  NREXT64: 1 << 5,
  EXCHRANGE: 1 << 6,
  PARENT: 1 << 7,
  METADIR: 1 << 8,
  ZONED: 1 << 9,
} as const;

/** The incompat features this driver reads (metadir and zoned change where metadata lives). */
export const INCOMPAT_READ =
  INCOMPAT.FTYPE | INCOMPAT.SPINODES | INCOMPAT.META_UUID | INCOMPAT.BIGTIME | INCOMPAT.NEEDSREPAIR | INCOMPAT.NREXT64 | INCOMPAT.EXCHRANGE | INCOMPAT.PARENT;

/** v5 log-incompat features: only the log's format depends on them. */
export const LOG_INCOMPAT = {
  XATTRS: 1 << 0,
} as const;

/** sb_flags. */
export const SBF_READONLY = 0x01;

// ---- allocation group headers: superblock copy, AGF, AGI, AGFL in sectors 0..3 of each AG

export const XFS_AGF_MAGIC = 0x58414746; // 'XAGF'
export const XFS_AGI_MAGIC = 0x58414749; // 'XAGI'
export const XFS_AGFL_MAGIC = 0x5841464c; // 'XAFL'
export const XFS_AGF_VERSION = 1;
export const XFS_AGI_VERSION = 1;
/** Sector index of each header inside its AG. */
export const AGF_SECTOR = 1;
export const AGI_SECTOR = 2;

export const AGF = {
  agf_magicnum: 0,
  agf_versionnum: 4,
  agf_seqno: 8,
  agf_length: 12,
  agf_bno_root: 16,
  agf_cnt_root: 20,
  agf_rmap_root: 24,
  agf_bno_level: 28,
  agf_cnt_level: 32,
  agf_rmap_level: 36,
  agf_flfirst: 40,
  agf_fllast: 44,
  agf_flcount: 48,
  agf_freeblks: 52,
  agf_longest: 56,
  agf_btreeblks: 60,
  agf_uuid: 64,
  agf_rmap_blocks: 80,
  agf_refcount_blocks: 84,
  agf_refcount_root: 88,
  agf_refcount_level: 92,
  agf_lsn: 208,
  agf_crc: 216,
  size: 224,
} as const;

export const XFS_AGI_UNLINKED_BUCKETS = 64;

export const AGI = {
  agi_magicnum: 0,
  agi_versionnum: 4,
  agi_seqno: 8,
  agi_length: 12,
  agi_count: 16,
  agi_root: 20,
  agi_level: 24,
  agi_freecount: 28,
  agi_newino: 32,
  agi_dirino: 36,
  agi_unlinked: 40,
  agi_uuid: 296,
  agi_crc: 312,
  agi_lsn: 320,
  agi_free_root: 328,
  agi_free_level: 332,
  agi_iblocks: 336,
  agi_fblocks: 340,
  size: 344,
} as const;

/** The null AG block / AG inode number. */
export const NULLAGBLOCK = 0xffffffff;
export const NULLAGINO = 0xffffffff;

// ---- inodes

export const XFS_DINODE_MAGIC = 0x494e; // 'IN'

export const DINODE = {
  di_magic: 0,
  di_mode: 2,
  di_version: 4,
  di_format: 5,
  di_onlink: 6,
  di_uid: 8,
  di_gid: 12,
  di_nlink: 16,
  di_projid_lo: 20,
  di_projid_hi: 22,
  /** v3 with NREXT64: the 64-bit data fork extent count; else padding (v2: di_flushiter at 30). */
  di_big_nextents: 24,
  di_atime: 32,
  di_mtime: 40,
  di_ctime: 48,
  di_size: 56,
  di_nblocks: 64,
  di_extsize: 72,
  /** 32-bit data fork extent count; with NREXT64 the 32-bit attr fork count (di_big_anextents). */
  di_nextents: 76,
  /** 16-bit attr fork extent count; with NREXT64 padding. */
  di_anextents: 80,
  di_forkoff: 82,
  di_aformat: 83,
  di_dmevmask: 84,
  di_dmstate: 88,
  di_flags: 90,
  di_gen: 92,
  di_next_unlinked: 96,
  // v3 only:
  di_crc: 100,
  di_changecount: 104,
  di_lsn: 112,
  di_flags2: 120,
  di_cowextsize: 128,
  di_crtime: 144,
  di_ino: 152,
  di_uuid: 160,
} as const;

/** Size of the inode core before the forks: v1/v2 and v3. */
export const DINODE_CORE_V2 = 100;
export const DINODE_CORE_V3 = 176;

/** di_format / di_aformat. */
export const FMT = {
  DEV: 0,
  LOCAL: 1,
  EXTENTS: 2,
  BTREE: 3,
  UUID: 4,
} as const;

/** di_flags. */
export const DIFLAG = {
  REALTIME: 1 << 0,
  PREALLOC: 1 << 1,
  NEWRTBM: 1 << 2,
  IMMUTABLE: 1 << 3,
  APPEND: 1 << 4,
  SYNC: 1 << 5,
  NOATIME: 1 << 6,
  NODUMP: 1 << 7,
  RTINHERIT: 1 << 8,
  PROJINHERIT: 1 << 9,
  NOSYMLINKS: 1 << 10,
  EXTSIZE: 1 << 11,
  EXTSZINHERIT: 1 << 12,
  NODEFRAG: 1 << 13,
  FILESTREAM: 1 << 14,
} as const;

/** di_flags2 (v3 inodes), as bits of the low 32-bit word. */
export const DIFLAG2 = {
  DAX: 1 << 0,
  REFLINK: 1 << 1,
  COWEXTSIZE: 1 << 2,
  BIGTIME: 1 << 3,
  NREXT64: 1 << 4,
  METADATA: 1 << 5,
} as const;

/** Extent count limits of the small (32/16-bit) and large (NREXT64) counters. */
export const MAX_EXTCNT_DATA_FORK_SMALL = 2 ** 31 - 1;
export const MAX_EXTCNT_ATTR_FORK_SMALL = 2 ** 15 - 1;
export const MAX_EXTCNT_DATA_FORK_LARGE = 2 ** 48 - 1;
export const MAX_EXTCNT_ATTR_FORK_LARGE = 2 ** 32 - 1;

/** Inode numbers are at most 56 bits. */
export const XFS_MAXINUMBER = 2n ** 56n - 1n;
export const XFS_INODES_PER_CHUNK = 64;

/** Bigtime timestamps count nanoseconds from the legacy minimum (1901-12-13T20:45:52Z). */
export const BIGTIME_EPOCH_OFFSET = 2 ** 31;

// ---- bmap btree (inode fork extent maps) and the short-form AG btrees

export const XFS_BMAP_MAGIC = 0x424d4150; // 'BMAP'
export const XFS_BMAP_CRC_MAGIC = 0x424d4133; // 'BMA3'
export const XFS_IBT_MAGIC = 0x49414254; // 'IABT'
export const XFS_IBT_CRC_MAGIC = 0x49414233; // 'IAB3'
export const XFS_FIBT_MAGIC = 0x46494254; // 'FIBT'
export const XFS_FIBT_CRC_MAGIC = 0x46494233; // 'FIB3'

/** Generic btree block header: bb_magic, bb_level, bb_numrecs, then the long or short sibling pointers. */
export const BTREE = {
  bb_magic: 0,
  bb_level: 4,
  bb_numrecs: 6,
  // long form (bmbt)
  l_leftsib: 8,
  l_rightsib: 16,
  l_blkno: 24,
  l_lsn: 32,
  l_uuid: 40,
  l_owner: 56,
  l_crc: 64,
  // short form (AG btrees)
  s_leftsib: 8,
  s_rightsib: 12,
  s_blkno: 16,
  s_lsn: 24,
  s_uuid: 32,
  s_owner: 48,
  s_crc: 52,
} as const;

export const BTREE_LBLOCK_LEN = 24;
export const BTREE_LBLOCK_CRC_LEN = 72;
export const BTREE_SBLOCK_LEN = 16;
export const BTREE_SBLOCK_CRC_LEN = 56;

/** The root of a btree-format fork inside the inode: bb_level, bb_numrecs, then keys and pointers. */
export const BMDR_HEADER_LEN = 4;
export const BMBT_REC_LEN = 16;
export const BMBT_KEY_LEN = 8;
export const BMBT_PTR_LEN = 8;
/** The 21-bit extent length and 54-bit file offset of a bmbt record. */
export const BMBT_BLOCKCOUNT_BITS = 21;
export const BMBT_STARTOFF_BITS = 54;
export const BMBT_STARTBLOCK_BITS = 52;

/** An inode btree record: ir_startino, then (sparse) ir_holemask, ir_count, ir_freecount or (full) a 32-bit ir_freecount, then ir_free. */
export const INOBT_REC_LEN = 16;
export const INOBT_KEY_LEN = 4;
export const INOBT_PTR_LEN = 4;

// ---- directories (version 2 and 3) and the da btree they share with attributes

export const XFS_DA_NODE_MAGIC = 0xfebe;
export const XFS_DA3_NODE_MAGIC = 0x3ebe;
export const XFS_ATTR_LEAF_MAGIC = 0xfbee;
export const XFS_ATTR3_LEAF_MAGIC = 0x3bee;
export const XFS_DIR2_LEAF1_MAGIC = 0xd2f1;
export const XFS_DIR3_LEAF1_MAGIC = 0x3df1;
export const XFS_DIR2_LEAFN_MAGIC = 0xd2ff;
export const XFS_DIR3_LEAFN_MAGIC = 0x3dff;
export const XFS_DIR2_BLOCK_MAGIC = 0x58443242; // 'XD2B'
export const XFS_DIR2_DATA_MAGIC = 0x58443244; // 'XD2D'
export const XFS_DIR2_FREE_MAGIC = 0x58443246; // 'XD2F'
export const XFS_DIR3_BLOCK_MAGIC = 0x58444233; // 'XDB3'
export const XFS_DIR3_DATA_MAGIC = 0x58444433; // 'XDD3'
export const XFS_DIR3_FREE_MAGIC = 0x58444633; // 'XDF3'

/** xfs_da_blkinfo: forw, back, magic (16-bit); the v3 form adds crc, blkno, lsn, uuid, owner. */
export const DA_BLKINFO = {
  forw: 0,
  back: 4,
  magic: 8,
  crc: 12,
  blkno: 16,
  lsn: 24,
  uuid: 32,
  owner: 48,
} as const;
export const DA_BLKINFO_LEN = 12;
export const DA3_BLKINFO_LEN = 56;

/** Node header: blkinfo then count and level (v3 padded to 64 bytes). */
export const DA_NODE_HDR_LEN = 16;
export const DA3_NODE_HDR_LEN = 64;
export const DA_NODE_ENTRY_LEN = 8;
export const XFS_DA_NODE_MAXDEPTH = 5;

/** xfs_dir3_blk_hdr of v3 data, block and free blocks: magic, crc, blkno, lsn, uuid, owner. */
export const DIR3_BLK_HDR = {
  magic: 0,
  crc: 4,
  blkno: 8,
  lsn: 16,
  uuid: 24,
  owner: 40,
} as const;
/** Data (and single-block) header length: magic + 3 bestfree (v2), dir3 header + bestfree + pad (v3). */
export const DIR2_DATA_HDR_LEN = 16;
export const DIR3_DATA_HDR_LEN = 64;
/** Leaf header: blkinfo + count + stale (+ pad in v3). */
export const DIR2_LEAF_HDR_LEN = 16;
export const DIR3_LEAF_HDR_LEN = 64;
export const DIR2_LEAF_ENTRY_LEN = 8;
/** Tail of a single-block directory: count and stale of its leaf entries. */
export const DIR2_BLOCK_TAIL_LEN = 8;
export const XFS_DIR2_DATA_FREE_TAG = 0xffff;
export const XFS_DIR2_DATA_ALIGN = 8;
/** The directory address space: data blocks below 32 GiB, leaf/node blocks from 32 GiB, free index from 64 GiB. */
export const XFS_DIR2_SPACE_SIZE = 2 ** 35;
export const XFS_DIR2_LEAF_OFFSET = XFS_DIR2_SPACE_SIZE;
export const XFS_DIR2_FREE_OFFSET = 2 * XFS_DIR2_SPACE_SIZE;
/** Short-form directory header: count, i8count, parent (4 or 8 bytes). */
export const DIR2_SF_HDR_LEN_I4 = 6;
export const DIR2_SF_HDR_LEN_I8 = 10;

/** File types in directory entries (with the ftype feature). */
export const DIR3_FT = {
  UNKNOWN: 0,
  REG_FILE: 1,
  DIR: 2,
  CHRDEV: 3,
  BLKDEV: 4,
  FIFO: 5,
  SOCK: 6,
  SYMLINK: 7,
  WHT: 8,
  MAX: 9,
} as const;

// ---- extended attributes

/** Short-form attribute header: totsize (16-bit), count, padding. */
export const ATTR_SF_HDR_LEN = 4;
/** Leaf header: blkinfo, count, usedbytes, firstused, holes, pad1, freemap[3] (+ pad2 in v3). */
export const ATTR_LEAF_HDR_LEN = 32;
export const ATTR3_LEAF_HDR_LEN = 80;
export const ATTR_LEAF_ENTRY_LEN = 8;
/** Offsets of count and firstused after the blkinfo. */
export const ATTR_LEAF_COUNT = 0;
export const ATTR_LEAF_FIRSTUSED = 4;
export const XFS_ATTR3_RMT_MAGIC = 0x5841524d; // 'XARM'
/** Remote attribute value block header (v5): magic, offset, bytes, crc, uuid, owner, blkno, lsn. */
export const ATTR3_RMT_HDR = {
  rm_magic: 0,
  rm_offset: 4,
  rm_bytes: 8,
  rm_crc: 12,
  rm_uuid: 16,
  rm_owner: 32,
  rm_blkno: 40,
  rm_lsn: 48,
  size: 56,
} as const;

/** Attribute entry flags (namespaces). */
export const ATTR_FLAG = {
  LOCAL: 1 << 0,
  ROOT: 1 << 1,
  SECURE: 1 << 2,
  PARENT: 1 << 3,
  INCOMPLETE: 1 << 7,
} as const;

/** The names XFS stores POSIX ACLs under (in the trusted namespace). */
export const SGI_ACL_FILE = 'SGI_ACL_FILE';
export const SGI_ACL_DEFAULT = 'SGI_ACL_DEFAULT';

// ---- symlinks

export const XFS_SYMLINK_MAGIC = 0x58534c4d; // 'XSLM'
export const DSYMLINK_HDR = {
  sl_magic: 0,
  sl_offset: 4,
  sl_bytes: 8,
  sl_crc: 12,
  sl_uuid: 16,
  sl_owner: 32,
  sl_blkno: 40,
  sl_lsn: 48,
  size: 56,
} as const;
export const XFS_SYMLINK_MAXLEN = 1024;

// ---- the log

export const XLOG_HEADER_MAGIC_NUM = 0xfeedbabe;
/** Log record header fields (in a 512-byte basic block). */
export const XLOG_REC = {
  h_magicno: 0,
  h_cycle: 4,
  h_version: 8,
  h_len: 12,
  h_lsn: 16,
  h_tail_lsn: 24,
  h_crc: 32,
  h_prev_block: 36,
  h_num_logops: 40,
  h_cycle_data: 44,
  h_fmt: 300,
  h_fs_uuid: 304,
  h_size: 320,
} as const;
export const XLOG_HEADER_CYCLE_SIZE = 32 * 1024;
export const XLOG_VERSION_1 = 1;
export const XLOG_VERSION_2 = 2;
/** A log operation header: tid, len, clientid, flags, pad. */
export const XLOG_OP_HEADER = {
  oh_tid: 0,
  oh_len: 4,
  oh_clientid: 8,
  oh_flags: 9,
  size: 12,
} as const;
export const XLOG_UNMOUNT_TRANS = 0x20;

// ---- the one rule shared with the probe

/** Smallest AG mkfs makes (XFS_MIN_AG_BLOCKS); libblkid uses it to bound sb_dblocks. */
export const XFS_MIN_AG_BLOCKS = 64;
/** How many bytes the probe reads (the fields it checks are all in the first 128). */
export const SB_PROBE_BYTES = 512;

/** Whether 512+ bytes look like a primary XFS superblock, with the sanity checks libblkid applies. */
export function isXfsSuperblock(sb: Buffer): boolean {
  if (sb.length < 128 || sb.readUInt32BE(SB.sb_magicnum) !== XFS_SB_MAGIC) return false;
  const blocksize = sb.readUInt32BE(SB.sb_blocksize);
  const dblocks = sb.readBigUInt64BE(SB.sb_dblocks);
  const rextsize = sb.readUInt32BE(SB.sb_rextsize);
  const agblocks = sb.readUInt32BE(SB.sb_agblocks);
  const agcount = sb.readUInt32BE(SB.sb_agcount);
  const sectsize = sb.readUInt16BE(SB.sb_sectsize);
  const inodesize = sb.readUInt16BE(SB.sb_inodesize);
  const blocklog = sb[SB.sb_blocklog];
  const sectlog = sb[SB.sb_sectlog];
  const inodelog = sb[SB.sb_inodelog];
  const inopblog = sb[SB.sb_inopblog];
  const imaxPct = sb[SB.sb_imax_pct];
  const rtextBytes = rextsize * blocksize;
  const maxDblocks = BigInt(agcount) * BigInt(agblocks);
  const minDblocks = BigInt(agcount - 1) * BigInt(agblocks) + BigInt(XFS_MIN_AG_BLOCKS);
  return (
    agcount > 0 &&
    sectlog >= 9 && sectlog <= 15 && sectsize === 1 << sectlog &&
    blocklog >= 9 && blocklog <= 16 && blocksize === 2 ** blocklog &&
    inodelog >= 8 && inodelog <= 11 && inodesize === 1 << inodelog &&
    blocklog - inodelog === inopblog &&
    rtextBytes >= 4096 && rtextBytes <= 1024 ** 3 &&
    imaxPct <= 100 &&
    dblocks !== 0n && dblocks <= maxDblocks && dblocks >= minDblocks
  );
}
