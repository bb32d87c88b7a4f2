/**
 * What the Linux kernel checks when it mounts an ext2/3/4 filesystem
 * (ext4_fill_super, ext4_check_descriptors) and refuses the mount over,
 * while guestlens can still read the bytes. A forensic user may want those
 * figures, but they are not what the guest would see (it would not mount
 * the filesystem at all): each refusal becomes an "inexact" reason, with the
 * kernel's own wording where it has one. Found by running e2fsprogs's test
 * images against the kernel (pnpm test:robustness).
 */
import { COMPAT, INCOMPAT, hasCompat, hasIncompat } from './superblock.ts';
import { INODE_FLAGS, S_IFDIR, S_IFMT, readInode } from './inode.ts';
import { openJournal } from './journal/index.ts';
import { systemZoneOverlap } from './systemZone.ts';
import type { ExtVolume } from './volume.ts';

export async function mountRefusals(vol: ExtVolume): Promise<string[]> {
  const sb = vol.sb;
  const out: string[] = [];
  // Not a refusal: block sizes above 4 KiB ("bad block size" on x86) are for kernels with
  // larger pages (arm64, ppc64 with 64 KiB pages), which mount them with these figures.
  if (hasIncompat(sb, INCOMPAT.META_BG) && sb.s_first_meta_bg > sb.gdbCount) {
    out.push(`the kernel refuses to mount it: first meta block group too large (${sb.s_first_meta_bg}, group descriptor block count ${sb.gdbCount})`);
  }
  // EXT4_GOOD_OLD_FIRST_INO: inodes below it are the reserved ones (root, journal, resize...).
  if (sb.s_rev_level >= 1 && sb.s_first_ino < 11) out.push(`the kernel refuses to mount it: invalid first ino: ${sb.s_first_ino}`);
  // The block the primary superblock lives in: 1 with 1 KiB blocks, else 0.
  const sbBlock = sb.s_first_data_block;
  const flex = hasIncompat(sb, INCOMPAT.FLEX_BG);
  for (const [group, gd] of vol.groups.entries()) {
    if (!gd) continue;
    const first = sb.s_first_data_block + group * sb.s_blocks_per_group;
    const last = Math.min(first + sb.s_blocks_per_group - 1, sb.s_blocks_count - 1);
    const checks: [string, number][] = [['Block bitmap', gd.bg_block_bitmap], ['Inode bitmap', gd.bg_inode_bitmap], ['Inode table', gd.bg_inode_table]];
    const bad = checks.find(([, block]) => block === sbBlock) ?? (flex ? undefined : checks.find(([, block]) => block < first || block > last));
    if (bad) {
      out.push(`the kernel refuses to mount it: ${bad[0]} for group ${group} ${bad[1] === sbBlock ? 'overlaps superblock' : 'not in group'} (block ${bad[1]})`);
      break;
    }
  }
  // With block_validity (the default), the mount records the metadata blocks and fails on an overlap.
  const overlap = await systemZoneOverlap(vol);
  if (overlap) out.push(`the kernel refuses to mount it: failed to initialize system zone (-117): ${overlap}`);
  try {
    const root = await readInode(vol, 2, { special: true });
    if ((root.i_mode & S_IFMT) !== S_IFDIR || root.i_links_count === 0) out.push('the kernel refuses to mount it: the root inode (2) is not a directory in use ("iget: special inode unallocated" or "corrupt root inode")');
    // ext4_fill_super: a root directory without blocks or size is "corrupt root inode, run e2fsck".
    else if (root.size === 0 || root.blocks512 === 0) out.push(`the kernel refuses to mount it: corrupt root inode (i_size ${root.size}, i_blocks ${root.blocks512})`);
    else if (!(root.i_flags & (INODE_FLAGS.EXTENTS | INODE_FLAGS.INLINE_DATA))) {
      // iget checks a block-mapped inode's pointers (ext4_ind_check_inode): each one inside the filesystem, past the superblock.
      for (let i = 0; i < 15; i++) {
        const block = root.i_block.readUInt32LE(i * 4);
        if (block !== 0 && (block <= sb.s_first_data_block || block >= sb.s_blocks_count)) {
          out.push(`the kernel refuses to mount it: the root inode (2) maps block ${block}, outside the filesystem ("iget: invalid block")`);
          break;
        }
      }
    }
  } catch (err) {
    out.push(`the kernel refuses to mount it: the root inode (2) cannot be read (${(err as Error).message})`);
  }
  // Every mount loads the journal (ext4_load_journal), replay or not: a journal inode or journal
  // superblock it cannot use fails the mount ("no journal found", "Could not load journal inode").
  if (hasCompat(sb, COMPAT.HAS_JOURNAL) && sb.s_journal_inum !== 0) {
    try {
      const j = await readInode(vol, sb.s_journal_inum, { special: true });
      if (j.i_links_count === 0 || (j.i_mode & S_IFMT) === 0) out.push(`the kernel refuses to mount it: the journal inode (${sb.s_journal_inum}) is not in use ("no journal found")`);
      else await openJournal(vol, sb.s_journal_inum);
    } catch (err) {
      out.push(`the kernel refuses to mount it: the journal cannot be loaded (${(err as Error).message})`);
    }
  }
  return out;
}
