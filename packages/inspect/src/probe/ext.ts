/**
 * ext2/3/4 superblock at byte 1024. Offsets, feature bits and the rule that
 * names the filesystem come from the driver's layout table
 * (filesystems/ext/layout.ts), so the probe and the driver cannot disagree.
 */
import { SB, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, EXT4_SUPER_MAGIC, COMPAT, alsoExt2, extTypeFromFeatures, featuresOf } from '../filesystems/ext/layout.ts';
import type { ProbeReader } from './reader.ts';
import type { ProbeResult } from './result.ts';
import { formatUuid, labelFrom } from './text.ts';

export { extTypeFromFeatures, type ExtFeatures } from '../filesystems/ext/layout.ts';

export async function probeExt(r: ProbeReader): Promise<ProbeResult | undefined> {
  const sb = await r.read(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE);
  if (!sb || sb.readUInt16LE(SB.s_magic) !== EXT4_SUPER_MAGIC) return undefined;
  // Like blkid, the magic is all that is checked here; the driver validates the rest when it opens the filesystem.
  const logBlockSize = sb.readUInt32LE(SB.s_log_block_size);
  const features = featuresOf(sb);
  const type = extTypeFromFeatures(features);
  if (!type) return undefined;
  const result: ProbeResult = {
    type,
    usage: type === 'jbd' ? 'other' : 'filesystem',
    label: labelFrom(sb.subarray(SB.s_volume_name, SB.s_volume_name + 16)),
    uuid: formatUuid(sb.subarray(SB.s_uuid, SB.s_uuid + 16)),
    version: `${sb.readUInt32LE(SB.s_rev_level)}.${sb.readUInt16LE(SB.s_minor_rev_level)}`,
    blockSize: logBlockSize <= 16 ? 1024 * 2 ** logBlockSize : undefined,
  };
  // A journal device names itself as the log of the filesystem that uses it.
  if (type === 'jbd') result.logUuid = result.uuid;
  if (features.compat & COMPAT.HAS_JOURNAL) result.extJournal = formatUuid(sb.subarray(SB.s_journal_uuid, SB.s_journal_uuid + 16));
  // Everything but ext2 itself is also "ext2" to blkid when an ext2 driver could mount it (no incompat feature ext2 lacks).
  if (type !== 'ext2' && type !== 'jbd' && alsoExt2(features)) result.secType = 'ext2';
  return result;
}
