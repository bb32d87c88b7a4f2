/**
 * btrfs: the primary superblock at 64 KiB ("_BHRfS_M"). Offsets come from
 * the driver's layout table (filesystems/btrfs/layout.ts), so the probe and
 * the driver cannot disagree.
 */
import { BTRFS_MAGIC, DEV_ITEM, LABEL_SIZE, PRIMARY_SUPERBLOCK_OFFSET, SB, SUPERBLOCK_SIZE } from '../filesystems/btrfs/layout.ts';
import type { ProbeReader } from './reader.ts';
import type { ProbeResult } from './result.ts';
import { formatUuid, labelFrom } from './text.ts';

const DEV_ITEM_UUID = SB.dev_item + DEV_ITEM.uuid;

export async function probeBtrfs(r: ProbeReader): Promise<ProbeResult | undefined> {
  const sb = await r.read(PRIMARY_SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE);
  if (!sb || sb.toString('latin1', SB.magic, SB.magic + 8) !== BTRFS_MAGIC) return undefined;
  // The superblock records where it lives; a copy found elsewhere is not the primary.
  if (sb.readBigUInt64LE(SB.bytenr) !== BigInt(PRIMARY_SUPERBLOCK_OFFSET)) return undefined;
  return {
    type: 'btrfs',
    usage: 'filesystem',
    label: labelFrom(sb.subarray(SB.label, SB.label + LABEL_SIZE)),
    uuid: formatUuid(sb.subarray(SB.fsid, SB.fsid + 16)),
    uuidSub: formatUuid(sb.subarray(DEV_ITEM_UUID, DEV_ITEM_UUID + 16)),
    blockSize: sb.readUInt32LE(SB.sectorsize),
  };
}
