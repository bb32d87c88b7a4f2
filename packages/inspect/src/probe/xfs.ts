/**
 * XFS: the primary superblock at byte 0 ("XFSB", big-endian fields), with
 * the sanity checks libblkid applies so that the magic alone does not decide.
 */
import type { ProbeReader } from './reader.ts';
import type { ProbeResult } from './result.ts';
import { formatUuid, labelFrom } from './text.ts';

const XFS_MAGIC = 0x58465342;
const MIN_AG_BLOCKS = 64;

export async function probeXfs(r: ProbeReader): Promise<ProbeResult | undefined> {
  const sb = await r.read(0, 512);
  if (!sb || sb.readUInt32BE(0) !== XFS_MAGIC) return undefined;
  const sb_blocksize = sb.readUInt32BE(4);
  const sb_dblocks = sb.readBigUInt64BE(8);
  const sb_rextsize = sb.readUInt32BE(80);
  const sb_agblocks = sb.readUInt32BE(84);
  const sb_agcount = sb.readUInt32BE(88);
  const sb_sectsize = sb.readUInt16BE(102);
  const sb_inodesize = sb.readUInt16BE(104);
  const sb_blocklog = sb[120];
  const sb_sectlog = sb[121];
  const sb_inodelog = sb[122];
  const sb_inopblog = sb[123];
  const sb_imax_pct = sb[127];
  const rtextBytes = sb_rextsize * sb_blocksize;
  const maxDblocks = BigInt(sb_agcount) * BigInt(sb_agblocks);
  const minDblocks = BigInt(sb_agcount - 1) * BigInt(sb_agblocks) + BigInt(MIN_AG_BLOCKS);
  const sane =
    sb_agcount > 0 &&
    sb_sectlog >= 9 && sb_sectlog <= 15 && sb_sectsize === 1 << sb_sectlog &&
    sb_blocklog >= 9 && sb_blocklog <= 16 && sb_blocksize === 2 ** sb_blocklog &&
    sb_inodelog >= 8 && sb_inodelog <= 11 && sb_inodesize === 1 << sb_inodelog &&
    sb_blocklog - sb_inodelog === sb_inopblog &&
    rtextBytes >= 4096 && rtextBytes <= 1024 ** 3 &&
    sb_imax_pct <= 100 &&
    sb_dblocks !== 0n && sb_dblocks <= maxDblocks && sb_dblocks >= minDblocks;
  if (!sane) return undefined;
  return {
    type: 'xfs',
    usage: 'filesystem',
    label: labelFrom(sb.subarray(108, 120)),
    uuid: formatUuid(sb.subarray(32, 48)),
    blockSize: sb_sectsize,
  };
}
