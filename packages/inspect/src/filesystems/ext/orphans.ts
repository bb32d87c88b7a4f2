/**
 * Orphan cleanup, as the kernel runs it at mount (ext4_orphan_cleanup), for
 * its effect on statfs. The superblock's s_last_orphan starts a chain of
 * inodes linked through i_dtime. An orphan with no links left is deleted:
 * its blocks (everything i_blocks counts, but an extended-attribute block
 * still shared with other inodes) and the inode itself become free. An orphan
 * that still has links is only truncated to i_size; we do not model that, nor
 * bigalloc's partial clusters, nor the orphan file: those stay "inexact".
 */
import { readInode } from './inode.ts';
import { RO_COMPAT, hasRoCompat } from './superblock.ts';
import type { ExtVolume } from './volume.ts';

export interface OrphanEffect {
  /** Blocks (filesystem blocks) the cleanup frees. */
  freedBlocks: number;
  freedInodes: number;
  /** Set when the effect could not be modelled exactly. */
  inexact?: string;
}

const EA_HEADER_MAGIC = 0xea020000;
const EXT4_ERROR_FS = 0x2;

export async function orphanCleanupEffect(vol: ExtVolume): Promise<OrphanEffect> {
  const sb = vol.sb;
  const effect: OrphanEffect = { freedBlocks: 0, freedInodes: 0 };
  if (sb.s_last_orphan === 0) return effect;
  // A filesystem marked with errors has its orphan list dropped at mount, nothing freed.
  if (sb.s_state & EXT4_ERROR_FS) return effect;
  if (hasRoCompat(sb, RO_COMPAT.BIGALLOC)) return { ...effect, inexact: 'orphan inodes would be cleaned up at mount; with bigalloc the freed clusters are not modelled' };
  const seen = new Set<number>();
  let ino = sb.s_last_orphan;
  while (ino !== 0) {
    if (ino < sb.s_first_ino || ino > sb.s_inodes_count || seen.has(ino)) {
      return { ...effect, inexact: `the orphan list is damaged at inode ${ino}; the kernel's cleanup is not modelled` };
    }
    seen.add(ino);
    const inode = await readInode(vol, ino, { special: true });
    if (inode.i_links_count !== 0) {
      return { ...effect, inexact: `orphan inode ${ino} still has links and would be truncated at mount, which guestlens does not model` };
    }
    let blocks = inode.blocks512 / (sb.blockSize / 512);
    if (inode.i_file_acl !== 0 && vol.validRange(inode.i_file_acl)) {
      const ea = await vol.cache.read(inode.i_file_acl);
      // A shared xattr block only loses one reference.
      if (ea.readUInt32LE(0) === EA_HEADER_MAGIC && ea.readUInt32LE(4) > 1) blocks -= 1;
    }
    effect.freedBlocks += Math.max(0, Math.floor(blocks));
    effect.freedInodes += 1;
    // NEXT_ORPHAN: the chain continues through i_dtime.
    ino = inode.raw.readUInt32LE(0x14);
  }
  return effect;
}
