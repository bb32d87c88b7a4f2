/**
 * The kernel's "system zone" (fs/ext4/block_validity.c): at mount it records
 * every group's superblock copy, descriptor and reserved-GDT blocks, bitmaps
 * and inode table, then the journal inode's blocks, and refuses the mount
 * ("failed to initialize system zone (-117)") when a range it adds starts
 * inside one added before. A mount-time check only: the figures guestlens
 * reads from such a filesystem are not the ones a guest would see.
 *
 * The order and the test are the kernel's (a range starting before an
 * earlier one and running into it is not caught there, nor here); the
 * ranges are those of ext4_num_base_meta_blocks, which counts the
 * reserved GDT blocks (found with the kernel: s_reserved_gdt_blocks one
 * past the block bitmap fails the mount, one short mounts).
 */
import { COMPAT, INCOMPAT, groupDescriptorBlocks, groupFirstBlock, groupHasSuper, hasCompat, hasIncompat, type Superblock } from './superblock.ts';
import { readInode } from './inode.ts';
import { mapBlocks } from './mapping.ts';
import type { ExtVolume } from './volume.ts';

interface Zone {
  start: number;
  count: number;
  what: string;
}

/** The reason the kernel would refuse to set the zone up, or undefined when it would succeed. */
export async function systemZoneOverlap(vol: ExtVolume): Promise<string | undefined> {
  const sb = vol.sb;
  const zones: Zone[] = []; // sorted by start
  const add = (start: number, count: number, what: string): string | undefined => {
    if (count <= 0) return undefined;
    let lo = 0;
    let hi = zones.length;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (zones[mid].start <= start) lo = mid + 1;
      else hi = mid;
    }
    const before = zones[lo - 1];
    if (before && start < before.start + before.count) {
      return `${what} (blocks ${start}-${start + count - 1}) overlaps ${before.what} (blocks ${before.start}-${before.start + before.count - 1})`;
    }
    zones.splice(lo, 0, { start, count, what });
    return undefined;
  };
  for (const [g, gd] of vol.groups.entries()) {
    const overlap =
      add(groupFirstBlock(sb, g), baseMetaBlocks(sb, g), `the superblock and descriptors of group ${g}`) ??
      (gd && (add(gd.bg_block_bitmap, 1, `the block bitmap of group ${g}`) ?? add(gd.bg_inode_bitmap, 1, `the inode bitmap of group ${g}`) ?? add(gd.bg_inode_table, sb.itbPerGroup, `the inode table of group ${g}`)));
    if (overlap) return overlap;
  }
  if (hasCompat(sb, COMPAT.HAS_JOURNAL) && sb.s_journal_inum !== 0) {
    let runs;
    try {
      const journal = await readInode(vol, sb.s_journal_inum, { special: true });
      runs = await mapBlocks(vol, journal, 0, Math.ceil(journal.size / sb.blockSize));
    } catch {
      return undefined; // an unreadable journal is refused by the journal check, with its own reason
    }
    for (const r of runs) {
      const at = r.pblk ?? r.allocatedPblk;
      if (at === undefined) continue;
      const overlap = add(at, r.length, `the journal's blocks`);
      if (overlap) return overlap;
    }
  }
  return undefined;
}

/** ext4_num_base_meta_blocks: the superblock copy, descriptor blocks and (outside meta_bg) reserved GDT blocks. */
function baseMetaBlocks(sb: Superblock, g: number): number {
  const hasSuper = groupHasSuper(sb, g) ? 1 : 0;
  const inMetaBg = hasIncompat(sb, INCOMPAT.META_BG) && g >= sb.s_first_meta_bg * sb.descPerBlock;
  if (inMetaBg) return hasSuper + groupDescriptorBlocks(sb, g);
  return hasSuper ? hasSuper + groupDescriptorBlocks(sb, g) + sb.s_reserved_gdt_blocks : 0;
}
