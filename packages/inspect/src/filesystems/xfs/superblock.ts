/**
 * The XFS primary superblock (AG 0, sector 0): parsed, checked as the
 * kernel's mount checks it (xfs_validate_sb_common and the v4/v5 feature
 * rules), its CRC verified on v5, and the geometry every other structure
 * needs derived once (AG and inode-number bit widths, directory block size,
 * which optional formats are in use). 64-bit fields are read as bigint and
 * converted explicitly, so an absurd value is an error, not a rounding.
 */
import { toSafeNumber } from '@guestlens/block';
import { checkXfsChecksum } from './checksum.ts';
import { XfsChecksumError, XfsCorruptError, XfsError, XfsUnsupportedError } from './errors.ts';
import {
  INCOMPAT,
  INCOMPAT_READ,
  RO_COMPAT,
  SB,
  SB_LABEL_LENGTH,
  VERSION,
  VERSION2,
  VERSION2_OKBITS,
  XFS_MIN_AG_BLOCKS,
  XFS_SB_MAGIC,
} from './layout.ts';

/** The limits of xfs_validate_sb_common. */
const MIN_BLOCKSIZE_LOG = 9;
const MAX_BLOCKSIZE_LOG = 16;
const MIN_CRC_BLOCKSIZE = 1024;
const MIN_AG_BYTES = 2 ** 24;
const MAX_AG_BYTES = 2 ** 40;
const MIN_RTEXTSIZE = 4096;
const MAX_RTEXTSIZE = 2 ** 30;
/** XFS_MAX_LOG_BLOCKS and XFS_MAX_LOG_BYTES (2 GiB less the 10 MiB minimum log). */
const MAX_LOG_BLOCKS = 1024 * 1024;
const MAX_LOG_BYTES = 2 ** 31 - 10 * 2 ** 20;

const INCOMPAT_NAMES: Record<number, string> = {
  [INCOMPAT.METADIR]: 'metadata directories (metadir)',
  [INCOMPAT.ZONED]: 'zoned storage (zoned)',
};

export interface Superblock {
  sb_blocksize: number;
  sb_dblocks: number;
  sb_rblocks: number;
  sb_rextents: number;
  sb_uuid: Buffer;
  sb_logstart: number;
  sb_rootino: number;
  sb_rbmino: bigint;
  sb_rsumino: bigint;
  sb_rextsize: number;
  sb_agblocks: number;
  sb_agcount: number;
  sb_logblocks: number;
  sb_versionnum: number;
  sb_sectsize: number;
  sb_inodesize: number;
  sb_inopblock: number;
  sb_fname: string;
  sb_blocklog: number;
  sb_sectlog: number;
  sb_inodelog: number;
  sb_inopblog: number;
  sb_agblklog: number;
  sb_inprogress: number;
  sb_imax_pct: number;
  /** Counters as bigint: only trusted after a clean unmount, so they may be absurd. */
  sb_icount: bigint;
  sb_ifree: bigint;
  sb_fdblocks: bigint;
  sb_uquotino: bigint;
  sb_gquotino: bigint;
  sb_pquotino: bigint;
  sb_flags: number;
  sb_inoalignmt: number;
  sb_unit: number;
  sb_width: number;
  sb_dirblklog: number;
  sb_logsectlog: number;
  sb_logsectsize: number;
  sb_logsunit: number;
  /** sb_features2 | sb_bad_features2, as the kernel merges a mismatched pair. */
  sb_features2: number;
  sb_features_compat: number;
  sb_features_ro_compat: number;
  sb_features_incompat: number;
  sb_features_log_incompat: number;
  sb_spino_align: number;
  sb_meta_uuid: Buffer;

  // Derived.
  version: 4 | 5;
  /** Bits of an AG-relative inode number (agblklog + inopblog). */
  aginoLog: number;
  /** Bytes of one directory block (blocksize << dirblklog). */
  dirBlockSize: number;
  /** The UUID stamped into v5 metadata: sb_meta_uuid with META_UUID, else sb_uuid. */
  metaUuid: Buffer;
  hasCrc: boolean;
  hasFtype: boolean;
  hasBigtime: boolean;
  hasNrext64: boolean;
  hasLazySbCount: boolean;
  hasFinobt: boolean;
  hasSparseInodes: boolean;
  hasRmapbt: boolean;
  hasReflink: boolean;
  hasAsciiCi: boolean;
  hasParent: boolean;
  /** v1 inodes are allowed (v4 without NLINKBIT); v2 and v3 inodes need their superblock features. */
  hasNlink: boolean;
  /** Blocks of the last AG (it may be shorter). */
  lastAgBlocks: number;
}

/** xfs_highbit32(x - 1) + 1: the log2 of agblocks rounded up. */
function log2Ceil(x: number): number {
  let n = 0;
  while (2 ** n < x) n++;
  return n;
}

export interface ParseOptions {
  retryable: boolean;
  /** Log recovery rewrote the superblock: its CRC is recomputed only when written back, so it is not checked. */
  skipCrc?: boolean;
}

/**
 * Parse and check the primary superblock (the first sb_sectsize bytes of the
 * filesystem; at least 512 are needed to start). `deviceSize` bounds the
 * geometry.
 */
export function parseSuperblock(buf: Buffer, image: string, deviceSize: number, options: ParseOptions): Superblock {
  const corrupt = (detail: string) => new XfsCorruptError(image, 'superblock', 0, detail, { retryable: options.retryable });
  if (buf.length < 512 || buf.readUInt32BE(SB.sb_magicnum) !== XFS_SB_MAGIC) {
    throw new XfsError('EINVAL', image, 'not an XFS filesystem (no XFSB magic at byte 0)');
  }
  const u8 = (o: number) => buf[o];
  const u16 = (o: number) => buf.readUInt16BE(o);
  const u32 = (o: number) => buf.readUInt32BE(o);
  const u64 = (o: number) => buf.readBigUInt64BE(o);
  const safe64 = (o: number, what: string) => {
    const v = u64(o);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`${what} ${v} is beyond 2^53`);
    return Number(v);
  };

  const sb_versionnum = u16(SB.sb_versionnum);
  const versionNumber = sb_versionnum & VERSION.NUMBITS;
  if (versionNumber !== VERSION.V4 && versionNumber !== VERSION.V5) {
    throw new XfsUnsupportedError(image, `superblock version ${versionNumber}`, 'only version 4 and 5 superblocks exist on filesystems Linux can mount');
  }
  const version = versionNumber as 4 | 5;
  const sb_sectsize = u16(SB.sb_sectsize);
  const sb_sectlog = u8(SB.sb_sectlog);
  if (sb_sectlog < 9 || sb_sectlog > 15 || sb_sectsize !== 1 << sb_sectlog) throw corrupt(`sector size ${sb_sectsize} (log ${sb_sectlog}) is invalid`);
  if (buf.length < sb_sectsize) throw corrupt(`only ${buf.length} bytes of a ${sb_sectsize}-byte superblock sector were given`);

  if (version === 5 && !options.skipCrc) {
    const { stored, computed } = checkXfsChecksum(buf, SB.sb_crc, 0, sb_sectsize);
    if (stored !== computed) throw new XfsChecksumError(image, 'superblock', 0, computed, stored, { retryable: options.retryable });
  }

  const sb_features2 = u32(SB.sb_features2) | u32(SB.sb_bad_features2);
  const sb_features_compat = version === 5 ? u32(SB.sb_features_compat) : 0;
  const sb_features_ro_compat = version === 5 ? u32(SB.sb_features_ro_compat) : 0;
  const sb_features_incompat = version === 5 ? u32(SB.sb_features_incompat) : 0;
  const sb_features_log_incompat = version === 5 ? u32(SB.sb_features_log_incompat) : 0;

  if (version === 4) {
    if (!(sb_versionnum & VERSION.DIRV2BIT)) throw new XfsUnsupportedError(image, 'version 1 directories', 'Linux reads only version 2 directories');
    if (sb_versionnum & VERSION.SHAREDBIT) throw new XfsUnsupportedError(image, 'the "shared" superblock feature');
    if (sb_versionnum & VERSION.MOREBITSBIT && sb_features2 & ~VERSION2_OKBITS & ~VERSION2.CRCBIT) {
      throw new XfsUnsupportedError(image, `unknown features2 bits 0x${(sb_features2 & ~VERSION2_OKBITS).toString(16)}`);
    }
  } else {
    const unknown = sb_features_incompat & ~INCOMPAT_READ;
    if (unknown) {
      const named = Object.entries(INCOMPAT_NAMES).filter(([bit]) => unknown & Number(bit)).map(([, name]) => name);
      throw new XfsUnsupportedError(image, named.length ? named.join(', ') : `unknown incompatible features 0x${unknown.toString(16)}`);
    }
    // Unknown read-only-compatible features do not change what a reader sees: the kernel mounts read-only anyway.
  }

  const sb_blocksize = u32(SB.sb_blocksize);
  const sb_blocklog = u8(SB.sb_blocklog);
  const sb_inodesize = u16(SB.sb_inodesize);
  const sb_inodelog = u8(SB.sb_inodelog);
  const sb_inopblock = u16(SB.sb_inopblock);
  const sb_inopblog = u8(SB.sb_inopblog);
  const sb_agblocks = u32(SB.sb_agblocks);
  const sb_agblklog = u8(SB.sb_agblklog);
  const sb_agcount = u32(SB.sb_agcount);
  const sb_dirblklog = u8(SB.sb_dirblklog);
  const sb_rextsize = u32(SB.sb_rextsize);
  const sb_imax_pct = u8(SB.sb_imax_pct);
  const sb_dblocksBig = u64(SB.sb_dblocks);

  if (sb_blocklog < MIN_BLOCKSIZE_LOG || sb_blocklog > MAX_BLOCKSIZE_LOG || sb_blocksize !== 2 ** sb_blocklog) {
    throw corrupt(`block size ${sb_blocksize} (log ${sb_blocklog}) is invalid`);
  }
  if (version === 5 && sb_blocksize < MIN_CRC_BLOCKSIZE) throw corrupt(`block size ${sb_blocksize} is too small for a version 5 superblock`);
  if (sb_dirblklog + sb_blocklog > MAX_BLOCKSIZE_LOG) throw corrupt(`directory block size 2^${sb_dirblklog + sb_blocklog} is too large`);
  if (![256, 512, 1024, 2048].includes(sb_inodesize) || sb_inodesize !== 1 << sb_inodelog) throw corrupt(`inode size ${sb_inodesize} (log ${sb_inodelog}) is invalid`);
  if (sb_inodesize > sb_blocksize || sb_inopblock !== sb_blocksize / sb_inodesize || sb_blocklog - sb_inodelog !== sb_inopblog) {
    throw corrupt(`${sb_inopblock} inodes per block (log ${sb_inopblog}) do not match ${sb_blocksize}-byte blocks and ${sb_inodesize}-byte inodes`);
  }
  if (sb_agblocks * sb_blocksize < MIN_AG_BYTES || sb_agblocks * sb_blocksize > MAX_AG_BYTES || sb_agblocks < XFS_MIN_AG_BLOCKS) {
    throw corrupt(`AG size of ${sb_agblocks} blocks is outside what XFS allows`);
  }
  if (sb_agblklog !== log2Ceil(sb_agblocks)) throw corrupt(`sb_agblklog ${sb_agblklog} does not match ${sb_agblocks} blocks per AG`);
  const agcountComputed = sb_dblocksBig === 0n ? 0n : (sb_dblocksBig + BigInt(sb_agblocks) - 1n) / BigInt(sb_agblocks);
  if (sb_agcount === 0 || agcountComputed !== BigInt(sb_agcount)) throw corrupt(`${sb_agcount} AGs of ${sb_agblocks} blocks do not hold ${sb_dblocksBig} blocks`);
  const maxDblocks = BigInt(sb_agcount) * BigInt(sb_agblocks);
  const minDblocks = BigInt(sb_agcount - 1) * BigInt(sb_agblocks) + BigInt(XFS_MIN_AG_BLOCKS);
  if (sb_dblocksBig > maxDblocks || sb_dblocksBig < minDblocks) throw corrupt(`sb_dblocks ${sb_dblocksBig} is outside the AG geometry`);
  if (sb_rextsize * sb_blocksize < MIN_RTEXTSIZE || sb_rextsize * sb_blocksize > MAX_RTEXTSIZE) throw corrupt(`realtime extent size ${sb_rextsize} blocks is invalid`);
  if (sb_imax_pct > 100) throw corrupt(`sb_imax_pct ${sb_imax_pct} is over 100`);
  if (u8(SB.sb_shared_vn) !== 0) throw corrupt(`sb_shared_vn is ${u8(SB.sb_shared_vn)}, not 0`);
  if (u8(SB.sb_inprogress) !== 0) {
    throw new XfsError('EINVAL', image, 'the superblock says mkfs.xfs did not finish (sb_inprogress is set); the kernel does not mount such a filesystem');
  }
  const sb_dblocks = toSafeNumber(sb_dblocksBig, `${image}: sb_dblocks`);
  if (!Number.isSafeInteger(sb_dblocks * sb_blocksize)) throw corrupt(`${sb_dblocks} blocks of ${sb_blocksize} bytes are beyond 2^53 bytes`);
  if (sb_dblocks * sb_blocksize > deviceSize) {
    throw new XfsError('EINVAL', image, `the filesystem claims ${sb_dblocks * sb_blocksize} bytes (${sb_dblocks} blocks of ${sb_blocksize}) but the device has only ${deviceSize}: it is truncated, or this is not the whole filesystem`);
  }

  const sb_logblocks = u32(SB.sb_logblocks);
  const sb_logstart = safe64(SB.sb_logstart, 'sb_logstart');
  if (sb_logblocks > MAX_LOG_BLOCKS || sb_logblocks * sb_blocksize > MAX_LOG_BYTES) throw corrupt(`the log of ${sb_logblocks} blocks is larger than XFS allows`);
  const sb_logsectlog = u8(SB.sb_logsectlog);
  const sb_logsectsize = u16(SB.sb_logsectsize);
  if (sb_versionnum & VERSION.SECTORBIT) {
    if (sb_logsectsize !== 1 << sb_logsectlog) throw corrupt(`log sector size ${sb_logsectsize} does not match its log ${sb_logsectlog}`);
  } else if (sb_logsectsize || sb_logsectlog) {
    throw corrupt('a log sector size is set without the sector feature');
  }
  const sb_unit = u32(SB.sb_unit);
  if (!!sb_unit !== !!(sb_versionnum & VERSION.DALIGNBIT)) throw corrupt('stripe unit and the stripe-alignment feature disagree');

  const sb_rblocks = safe64(SB.sb_rblocks, 'sb_rblocks');
  const sb_rextents = safe64(SB.sb_rextents, 'sb_rextents');
  if (sb_rblocks === 0 && (sb_rextents !== 0 || u32(SB.sb_rbmblocks) !== 0 || u8(SB.sb_rextslog) !== 0 || u64(SB.sb_frextents) !== 0n)) {
    throw corrupt('realtime geometry is set without realtime blocks');
  }

  const sb_rootino = safe64(SB.sb_rootino, 'sb_rootino');
  const sb_uuid = Buffer.from(buf.subarray(SB.sb_uuid, SB.sb_uuid + 16));
  const sb_meta_uuid = version === 5 ? Buffer.from(buf.subarray(SB.sb_meta_uuid, SB.sb_meta_uuid + 16)) : Buffer.alloc(16);
  const metaUuid = sb_features_incompat & INCOMPAT.META_UUID ? sb_meta_uuid : sb_uuid;

  const moreBits = version === 5 || (sb_versionnum & VERSION.MOREBITSBIT) !== 0;
  const hasFtype = version === 5 ? (sb_features_incompat & INCOMPAT.FTYPE) !== 0 : moreBits && (sb_features2 & VERSION2.FTYPE) !== 0;
  const lastAgBlocks = sb_dblocks - (sb_agcount - 1) * sb_agblocks;
  let fnameEnd = buf.indexOf(0, SB.sb_fname);
  if (fnameEnd < 0 || fnameEnd > SB.sb_fname + SB_LABEL_LENGTH) fnameEnd = SB.sb_fname + SB_LABEL_LENGTH;

  const sb: Superblock = {
    sb_blocksize,
    sb_dblocks,
    sb_rblocks,
    sb_rextents,
    sb_uuid,
    sb_logstart,
    sb_rootino,
    sb_rbmino: u64(SB.sb_rbmino),
    sb_rsumino: u64(SB.sb_rsumino),
    sb_rextsize,
    sb_agblocks,
    sb_agcount,
    sb_logblocks,
    sb_versionnum,
    sb_sectsize,
    sb_inodesize,
    sb_inopblock,
    sb_fname: buf.toString('utf8', SB.sb_fname, fnameEnd),
    sb_blocklog,
    sb_sectlog,
    sb_inodelog,
    sb_inopblog,
    sb_agblklog,
    sb_inprogress: 0,
    sb_imax_pct,
    sb_icount: u64(SB.sb_icount),
    sb_ifree: u64(SB.sb_ifree),
    sb_fdblocks: u64(SB.sb_fdblocks),
    sb_uquotino: u64(SB.sb_uquotino),
    sb_gquotino: u64(SB.sb_gquotino),
    sb_pquotino: version === 5 ? u64(SB.sb_pquotino) : 0n,
    sb_flags: u8(SB.sb_flags),
    sb_inoalignmt: u32(SB.sb_inoalignmt),
    sb_unit,
    sb_width: u32(SB.sb_width),
    sb_dirblklog,
    sb_logsectlog,
    sb_logsectsize,
    sb_logsunit: u32(SB.sb_logsunit),
    sb_features2,
    sb_features_compat,
    sb_features_ro_compat,
    sb_features_incompat,
    sb_features_log_incompat,
    sb_spino_align: version === 5 ? u32(SB.sb_spino_align) : 0,
    sb_meta_uuid,
    version,
    aginoLog: sb_agblklog + sb_inopblog,
    dirBlockSize: sb_blocksize * 2 ** sb_dirblklog,
    metaUuid,
    hasCrc: version === 5,
    hasFtype,
    hasBigtime: (sb_features_incompat & INCOMPAT.BIGTIME) !== 0,
    hasNrext64: (sb_features_incompat & INCOMPAT.NREXT64) !== 0,
    hasLazySbCount: version === 5 || (moreBits && (sb_features2 & VERSION2.LAZYSBCOUNTBIT) !== 0),
    hasFinobt: (sb_features_ro_compat & RO_COMPAT.FINOBT) !== 0,
    hasSparseInodes: (sb_features_incompat & INCOMPAT.SPINODES) !== 0,
    hasRmapbt: (sb_features_ro_compat & RO_COMPAT.RMAPBT) !== 0,
    hasReflink: (sb_features_ro_compat & RO_COMPAT.REFLINK) !== 0,
    hasAsciiCi: (sb_versionnum & VERSION.BORGBIT) !== 0,
    hasParent: (sb_features_incompat & INCOMPAT.PARENT) !== 0,
    hasNlink: version === 5 || (sb_versionnum & VERSION.NLINKBIT) !== 0,
    lastAgBlocks,
  };
  if (sb.aginoLog > 32) throw corrupt(`AG inode numbers of ${sb.aginoLog} bits do not fit 32`);
  if (sb.hasSparseInodes && sb.sb_inoalignmt !== (64 * sb_inodesize) / sb_blocksize) {
    throw corrupt(`inode chunk alignment ${sb.sb_inoalignmt} does not match the chunk size that sparse inodes need`);
  }
  return sb;
}

/** The filesystem's UUID as blkid prints it. */
export function formatUuid(uuid: Buffer): string | undefined {
  if (uuid.every((b) => b === 0)) return undefined;
  const h = uuid.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
