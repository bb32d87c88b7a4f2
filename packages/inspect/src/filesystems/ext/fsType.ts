/**
 * Which name blkid gives an ext filesystem: ext2 and ext3 are ext4-layout
 * filesystems that use only the features those older drivers knew.
 */
import { COMPAT, INCOMPAT, RO_COMPAT, type Superblock } from './superblock.ts';

const EXT2_RO_COMPAT_SUPPORTED = RO_COMPAT.SPARSE_SUPER | RO_COMPAT.LARGE_FILE | RO_COMPAT.BTREE_DIR;
const EXT2_INCOMPAT_SUPPORTED = INCOMPAT.FILETYPE | INCOMPAT.META_BG;
const EXT3_INCOMPAT_SUPPORTED = EXT2_INCOMPAT_SUPPORTED | INCOMPAT.RECOVER;

export function extFlavour(sb: Superblock): 'ext2' | 'ext3' | 'ext4' {
  const journal = (sb.s_feature_compat & COMPAT.HAS_JOURNAL) !== 0;
  const roExtra = sb.s_feature_ro_compat & ~EXT2_RO_COMPAT_SUPPORTED;
  if (journal) {
    const incExtra = sb.s_feature_incompat & ~EXT3_INCOMPAT_SUPPORTED;
    return roExtra || incExtra ? 'ext4' : 'ext3';
  }
  const incExtra = sb.s_feature_incompat & ~EXT2_INCOMPAT_SUPPORTED;
  return roExtra || incExtra ? 'ext4' : 'ext2';
}
