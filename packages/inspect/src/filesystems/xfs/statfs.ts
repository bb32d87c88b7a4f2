/**
 * statfs as the kernel computes it for a read-only mount (xfs_fs_statfs;
 * shared/spec/statfs.md). The free-block and inode counters are the
 * superblock's after a clean unmount (checked for plausibility as
 * xfs_check_summary_counts does), and the sums over the AG headers when the
 * log was dirty on a lazy-counter filesystem or the superblock's are
 * implausible (xfs_initialize_perag_data). Reading an AGF is also what
 * makes the kernel hold back its free-space btree blocks beyond the roots
 * (m_allocbt_blks), so those are set aside for every AGF mount reads. A
 * read-only mount reserves nothing else: set aside are the 4 AGFL blocks
 * plus 4 more per AG (xfs_alloc_set_aside).
 */
import { GuestlensError, toSafeNumber } from '@guestlens/block';
import type { StatFs } from '../filesystem.ts';
import { readAgf, readAgi } from './allocationGroup.ts';
import { XFS_INODES_PER_CHUNK, XFS_MAXINUMBER } from './layout.ts';
import type { XfsVolume } from './volume.ts';

export const XFS_NAME_LEN = 255;
/** XFS_ALLOCBT_AGFL_RESERVE + 4 blocks per AG. */
const SET_ASIDE_PER_AG = 8n;

export interface Counters {
  fdblocks: bigint;
  icount: bigint;
  ifree: bigint;
  /** Free-space btree blocks the kernel holds back once it has read the AGFs. */
  allocbtBlocks: bigint;
  /** Where the figures came from. */
  from: 'superblock' | 'AG headers';
}

/** Sum the AG headers as xfs_initialize_perag_data does (and count m_allocbt_blks as xfs_alloc_read_agf does). */
export async function agCounters(vol: XfsVolume): Promise<Counters> {
  let fdblocks = 0n;
  let icount = 0n;
  let ifree = 0n;
  let allocbt = 0n;
  for (let agno = 0; agno < vol.sb.sb_agcount; agno++) {
    const agf = await readAgf(vol, agno);
    const agi = await readAgi(vol, agno);
    fdblocks += BigInt(agf.agf_freeblks) + BigInt(agf.agf_flcount) + BigInt(agf.agf_btreeblks);
    icount += BigInt(agi.agi_count);
    ifree += BigInt(agi.agi_freecount);
    let blocks = agf.agf_btreeblks;
    if (vol.sb.hasRmapbt) blocks -= agf.agf_rmap_blocks - 1;
    if (blocks > 0) allocbt += BigInt(blocks);
  }
  if (fdblocks > BigInt(vol.sb.sb_dblocks) || ifree > icount) {
    throw vol.corrupt('AG headers', undefined, `their free-space and inode counters sum to ${fdblocks} free blocks of ${vol.sb.sb_dblocks} and ${ifree} free inodes of ${icount}; the kernel refuses to mount such a filesystem`);
  }
  return { fdblocks, icount, ifree, allocbtBlocks: allocbt, from: 'AG headers' };
}

/** xfs_verify_icount: at least one inode chunk and no more inodes than the AGs can hold. */
function plausibleIcount(vol: XfsVolume, icount: bigint): boolean {
  let max = 0n;
  for (let agno = 0; agno < vol.sb.sb_agcount; agno++) max += BigInt(vol.agLength(agno)) * BigInt(vol.sb.sb_inopblock);
  return icount >= BigInt(XFS_INODES_PER_CHUNK) && icount <= max;
}

/**
 * m_allocbt_blks as the mount leaves it when it did not sum the AG headers:
 * with finobt, reflink or rmapbt, mount sets up (and drops again) the per-AG
 * metadata reservations, which reads every AGF (xfs_ag_resv_init) and so
 * counts its free-space btree blocks; without them no AGF is read. Mount
 * ignores an AGF it cannot read and stops reading the rest, and so do we,
 * with a warning naming the AGF. Live or not: guest drivers always open in
 * live mode, and the kernel mounting this image would meet the same AGF.
 */
async function reservationAllocbtBlocks(vol: XfsVolume): Promise<bigint> {
  const sb = vol.sb;
  if (!sb.hasFinobt && !sb.hasReflink && !sb.hasRmapbt) return 0n;
  let total = 0n;
  for (let agno = 0; agno < sb.sb_agcount; agno++) {
    let agf;
    try {
      agf = await readAgf(vol, agno);
    } catch (err) {
      if (!(err instanceof GuestlensError)) throw err;
      vol.tolerated.push(`${err.message} (the kernel's mount skips the per-AG reservations from there on, and so does statfs)`);
      break;
    }
    let blocks = agf.agf_btreeblks;
    if (sb.hasRmapbt) blocks -= agf.agf_rmap_blocks - 1;
    if (blocks > 0) total += BigInt(blocks);
  }
  return total;
}

/** The counters the kernel starts from after mounting (its in-core superblock). */
export async function mountCounters(vol: XfsVolume, logClean: boolean): Promise<Counters> {
  const sb = vol.sb;
  const sick = logClean && (sb.sb_fdblocks > BigInt(sb.sb_dblocks) || !plausibleIcount(vol, sb.sb_icount) || sb.sb_ifree > sb.sb_icount);
  if ((sb.hasLazySbCount && !logClean) || sick) return agCounters(vol);
  return { fdblocks: sb.sb_fdblocks, icount: sb.sb_icount, ifree: sb.sb_ifree, allocbtBlocks: await reservationAllocbtBlocks(vol), from: 'superblock' };
}

export function computeStatfs(vol: XfsVolume, c: Counters, inexactReasons: readonly string[]): StatFs {
  const sb = vol.sb;
  const blocks = BigInt(sb.sb_dblocks) - (sb.sb_logstart !== 0 ? BigInt(sb.sb_logblocks) : 0n);
  const reasons = [...inexactReasons];
  let bfree = c.fdblocks - BigInt(sb.sb_agcount) * SET_ASIDE_PER_AG - c.allocbtBlocks;
  if (bfree < 0n) {
    // The kernel subtracts without a floor: its f_bfree wraps around to nearly 2^64.
    reasons.push(`the ${c.from === 'superblock' ? "superblock's" : "AG headers'"} free-block count (${c.fdblocks}) is below what the kernel sets aside (${c.fdblocks - bfree}): its statfs wraps around to ${bfree} (mod 2^64)`);
    bfree = 0n;
  }
  const fakeinos = bfree << BigInt(sb.sb_inopblog);
  let files = c.icount + fakeinos;
  if (files > XFS_MAXINUMBER) files = XFS_MAXINUMBER;
  const maxicount = maxInodeCount(vol);
  if (maxicount && files > maxicount) files = maxicount;
  if (files < c.icount) files = c.icount;
  let ffree = files - (c.icount - c.ifree);
  if (ffree < 0n) ffree = 0n;
  const what = `${vol.image}: XFS statfs`;
  const result: StatFs = {
    bsize: sb.sb_blocksize,
    blocks: toSafeNumber(blocks, `${what} blocks`),
    bfree: toSafeNumber(bfree, `${what} free blocks`),
    bavail: toSafeNumber(bfree, `${what} available blocks`),
    files: toSafeNumber(files, `${what} inodes`),
    ffree: toSafeNumber(ffree, `${what} free inodes`),
    namelen: XFS_NAME_LEN,
    exact: reasons.length === 0,
  };
  if (!result.exact) result.reason = reasons.join('; ');
  return result;
}

/** M_IGEO(mp)->maxicount: sb_imax_pct of the blocks, in whole inode-allocation units, as inodes (0: no limit). */
export function maxInodeCount(vol: XfsVolume): bigint {
  const sb = vol.sb;
  if (!sb.sb_imax_pct) return 0n;
  const iallocBlocks = BigInt(Math.max(XFS_INODES_PER_CHUNK, sb.sb_inopblock) >> sb.sb_inopblog);
  const blocks = (BigInt(sb.sb_dblocks) * BigInt(sb.sb_imax_pct)) / 100n / iallocBlocks * iallocBlocks;
  return blocks << BigInt(sb.sb_inopblog);
}
