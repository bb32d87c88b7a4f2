/**
 * XFS: the primary superblock at byte 0 ("XFSB", big-endian fields), with
 * the sanity checks libblkid applies so that the magic alone does not decide.
 * Offsets and the checks come from the driver's layout table
 * (filesystems/xfs/layout.ts), so the probe and the driver cannot disagree.
 */
import { SB, SB_LABEL_LENGTH, SB_PROBE_BYTES, isXfsSuperblock } from '../filesystems/xfs/layout.ts';
import type { ProbeReader } from './reader.ts';
import type { ProbeResult } from './result.ts';
import { formatUuid, labelFrom } from './text.ts';

export async function probeXfs(r: ProbeReader): Promise<ProbeResult | undefined> {
  const sb = await r.read(0, SB_PROBE_BYTES);
  if (!sb || !isXfsSuperblock(sb)) return undefined;
  return {
    type: 'xfs',
    usage: 'filesystem',
    label: labelFrom(sb.subarray(SB.sb_fname, SB.sb_fname + SB_LABEL_LENGTH)),
    uuid: formatUuid(sb.subarray(SB.sb_uuid, SB.sb_uuid + 16)),
    blockSize: sb.readUInt16BE(SB.sb_sectsize),
  };
}
