/**
 * statfs as the Linux ext4 driver computes it for a read-only mount
 * (ext4_statfs, ext4_calculate_overhead, ext4_calculate_resv_clusters); see
 * shared/spec/statfs.md. Reads only the group descriptors and the journal
 * inode's size. Counts are in clusters on disk with bigalloc and reported in
 * blocks, as the kernel's EXT4_C2B does.
 */
import type { StatFs } from '../filesystem.ts';
import type { GroupDescriptor } from './groupDescriptor.ts';
import {
  COMPAT,
  INCOMPAT,
  RO_COMPAT,
  groupDescriptorBlocks,
  groupFirstBlock,
  groupHasSuper,
  hasCompat,
  hasIncompat,
  hasRoCompat,
  type Superblock,
} from './superblock.ts';

export const EXT4_NAME_LEN = 255;

export interface StatfsInputs {
  sb: Superblock;
  groups: GroupDescriptor[];
  /** Blocks of the internal journal as the kernel counts them (0 without one). */
  journalBlocks: number;
  /** Reasons the figures may differ from the kernel's (mount-time work not modelled). */
  inexactReasons: string[];
  /** What mount-time work we modelled frees (orphan cleanup), in blocks and inodes. */
  freedByMount?: { blocks: number; inodes: number };
}

export function computeStatfs(input: StatfsInputs): StatFs {
  const { sb, groups } = input;
  const bigalloc = hasRoCompat(sb, RO_COMPAT.BIGALLOC);
  const c2b = (clusters: number) => clusters * 2 ** sb.clusterBits;

  let freeClusters = 0;
  let freeInodes = input.freedByMount?.inodes ?? 0;
  for (const g of groups) {
    freeClusters += g.bg_free_blocks_count;
    freeInodes += g.bg_free_inodes_count;
  }
  // Orphan cleanup is modelled only without bigalloc, where a block is a cluster.
  freeClusters += input.freedByMount?.blocks ?? 0;

  const overheadClusters = overhead(sb, groups, input.journalBlocks, bigalloc);
  const resvClusters = hasIncompat(sb, INCOMPAT.EXTENTS) ? Math.min(Math.floor(Math.floor(sb.s_blocks_count / 2 ** sb.clusterBits) / 50), 4096) : 0;

  const blocks = sb.s_blocks_count - c2b(overheadClusters);
  const bfree = c2b(Math.max(0, freeClusters));
  const reserved = sb.s_r_blocks_count + c2b(resvClusters);
  const bavail = bfree < reserved ? 0 : bfree - reserved;
  const result: StatFs = {
    bsize: sb.blockSize,
    blocks,
    bfree,
    bavail,
    files: sb.s_inodes_count,
    ffree: freeInodes,
    namelen: EXT4_NAME_LEN,
    exact: input.inexactReasons.length === 0,
  };
  if (!result.exact) result.reason = input.inexactReasons.join('; ');
  return result;
}

/** sbi->s_overhead in clusters. */
function overhead(sb: Superblock, groups: GroupDescriptor[], journalBlocks: number, bigalloc: boolean): number {
  // The kernel trusts mke2fs's s_overhead_clusters only with bigalloc (recomputing it otherwise is cheap).
  if (bigalloc && sb.s_overhead_clusters !== 0 && sb.s_overhead_clusters <= sb.s_blocks_count) return sb.s_overhead_clusters;
  let total = Math.floor(sb.s_first_data_block / 2 ** sb.clusterBits);
  if (bigalloc) total += bigallocOverhead(sb, groups);
  else for (let g = 0; g < sb.groupCount; g++) total += countOverhead(sb, g);
  if (hasCompat(sb, COMPAT.HAS_JOURNAL) && sb.s_journal_inum !== 0) total += Math.ceil(journalBlocks / 2 ** sb.clusterBits);
  return total;
}

function countOverhead(sb: Superblock, g: number): number {
  const hasSuper = groupHasSuper(sb, g) ? 1 : 0;
  return hasSuper + groupDescriptorBlocks(sb, g) + (hasSuper ? sb.s_reserved_gdt_blocks : 0) + sb.itbPerGroup + 2;
}

/**
 * count_overhead with bigalloc, summed over all groups: per group, the
 * distinct clusters holding any group's bitmaps or inode table (an inode table
 * counts only when it lies wholly inside the group), plus its superblock and
 * descriptor blocks. One pass over the descriptors instead of the kernel's
 * groups x groups loop.
 */
function bigallocOverhead(sb: Superblock, groups: GroupDescriptor[]): number {
  const used = new Map<number, Set<number>>();
  const ratio = 2 ** sb.clusterBits;
  const groupOf = (b: number) => Math.floor((b - sb.s_first_data_block) / sb.s_blocks_per_group);
  const mark = (g: number, clusterInGroup: number) => {
    let set = used.get(g);
    if (!set) used.set(g, (set = new Set()));
    set.add(clusterInGroup);
  };
  const markBlock = (b: number) => {
    if (b < sb.s_first_data_block) return;
    const g = groupOf(b);
    mark(g, Math.floor((b - groupFirstBlock(sb, g)) / ratio));
  };
  for (const gd of groups) {
    markBlock(gd.bg_block_bitmap);
    markBlock(gd.bg_inode_bitmap);
    const g = groupOf(gd.bg_inode_table);
    const first = groupFirstBlock(sb, g);
    if (gd.bg_inode_table >= sb.s_first_data_block && gd.bg_inode_table + sb.itbPerGroup <= first + sb.s_blocks_per_group - 1) {
      for (let j = 0; j < sb.itbPerGroup; j++) markBlock(gd.bg_inode_table + j);
    }
  }
  for (let g = 0; g < sb.groupCount; g++) {
    let s = 0;
    if (groupHasSuper(sb, g)) mark(g, s++);
    for (let j = groupDescriptorBlocks(sb, g); j > 0; j--) mark(g, Math.floor(s++ / ratio));
  }
  let total = 0;
  for (const set of used.values()) total += set.size;
  return total;
}
