/** btrfs: the primary superblock at 64 KiB ("_BHRfS_M"). */
import type { ProbeReader } from './reader.ts';
import type { ProbeResult } from './result.ts';
import { formatUuid, labelFrom } from './text.ts';

const SUPERBLOCK_OFFSET = 0x10000;
const MAGIC = '_BHRfS_M';
/** dev_item starts at 0xc9; its uuid follows 66 bytes of counters. */
const DEV_ITEM_UUID = 0xc9 + 66;

export async function probeBtrfs(r: ProbeReader): Promise<ProbeResult | undefined> {
  const sb = await r.read(SUPERBLOCK_OFFSET, 4096);
  if (!sb || sb.toString('latin1', 0x40, 0x48) !== MAGIC) return undefined;
  // The superblock records where it lives; a copy found elsewhere is not the primary.
  if (sb.readBigUInt64LE(0x30) !== BigInt(SUPERBLOCK_OFFSET)) return undefined;
  const sectorsize = sb.readUInt32LE(0x90);
  return {
    type: 'btrfs',
    usage: 'filesystem',
    label: labelFrom(sb.subarray(0x12b, 0x12b + 256)),
    uuid: formatUuid(sb.subarray(0x20, 0x30)),
    uuidSub: formatUuid(sb.subarray(DEV_ITEM_UUID, DEV_ITEM_UUID + 16)),
    blockSize: sectorsize,
  };
}
