/**
 * Which name blkid gives an ext filesystem: the one rule in layout.ts,
 * applied to a parsed superblock.
 */
import { extTypeFromFeatures, type ExtType } from './layout.ts';
import type { Superblock } from './superblock.ts';

export function extFlavour(sb: Superblock): Exclude<ExtType, 'jbd'> {
  const type = extTypeFromFeatures({ compat: sb.s_feature_compat, incompat: sb.s_feature_incompat, roCompat: sb.s_feature_ro_compat, flags: sb.s_flags });
  // A journal device is refused when opened; a superblock blkid accepts as none of the types is the newest layout.
  return type === undefined || type === 'jbd' ? 'ext4' : type;
}
