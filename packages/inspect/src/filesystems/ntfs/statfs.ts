/**
 * statfs as ntfs-3g computes it (ntfs_fuse_statfs), which is what libguestfs
 * (and so virt-df) shows for NTFS:
 *   f_bsize  = cluster size,  f_blocks = clusters of the volume,
 *   f_bfree  = f_bavail = zero bits of $Bitmap's data,
 *   s        = f_bfree scaled from clusters to MFT records
 *              (<< cluster_bits - mft_record_bits, or >> the other way),
 *   f_files  = $MFT's $BITMAP allocated size * 8 + s,
 *   f_ffree  = s + free MFT records, where those are the zero bits of
 *              $MFT's $BITMAP data plus 8 per byte allocated past its data.
 * Checked against `ntfs-3g -o ro` + `stat -f` in the driver's tests.
 */
import type { StatFs } from '../filesystem.ts';

export interface NtfsCounts {
  clusterSize: number;
  clusterBits: number;
  mftRecordBits: number;
  nrClusters: number;
  freeClusters: number;
  mftBitmapAllocated: number;
  mftBitmapDataSize: number;
  mftBitmapZeroBits: number;
}

/** NTFS_MAX_NAME_LEN, in UTF-16 code units. */
export const NTFS_MAX_NAME_LEN = 255;

export function computeStatfs(c: NtfsCounts, inexactReasons: readonly string[]): StatFs {
  const bfree = Math.max(0, c.freeClusters);
  const delta = c.clusterBits - c.mftRecordBits;
  const s = delta >= 0 ? bfree * 2 ** delta : Math.floor(bfree / 2 ** -delta);
  const freeRecords = c.mftBitmapZeroBits + (c.mftBitmapAllocated - c.mftBitmapDataSize) * 8;
  const out: StatFs = {
    bsize: c.clusterSize,
    blocks: c.nrClusters,
    bfree,
    bavail: bfree,
    files: c.mftBitmapAllocated * 8 + s,
    ffree: Math.max(0, s + freeRecords),
    namelen: NTFS_MAX_NAME_LEN,
    exact: inexactReasons.length === 0,
  };
  if (inexactReasons.length) out.reason = inexactReasons.join('; ');
  return out;
}
