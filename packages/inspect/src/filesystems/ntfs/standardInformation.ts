/**
 * $STANDARD_INFORMATION: the times `stat` shows (ntfs-3g takes them from
 * here, not from $FILE_NAME), the DOS file attributes (hidden, system,
 * reparse point, compressed...) and, from NTFS 3.0, the security id that
 * locates the file's descriptor in $Secure.
 */
import type { Timestamp } from '../filesystem.ts';
import { SI, SI_V1_SIZE, SI_V3_SIZE } from './layout.ts';
import { readNtfsTime } from './time.ts';

export interface StandardInformation {
  creationTime: Timestamp;
  /** st_mtime */
  lastDataChangeTime: Timestamp;
  /** st_ctime */
  lastMftChangeTime: Timestamp;
  /** st_atime */
  lastAccessTime: Timestamp;
  fileAttributes: number;
  /** NTFS 3.x only (0 otherwise). */
  ownerId: number;
  securityId: number;
  quotaCharged: bigint;
  usn: bigint;
  /** The value had the NTFS 3.x fields. */
  v3: boolean;
}

/** Parse a $STANDARD_INFORMATION value; a string is why it is unusable. */
export function parseStandardInformation(v: Buffer): StandardInformation | string {
  // ntfs-3g accepts anything up to owner_id (48 bytes); shorter is corrupt.
  if (v.length < SI_V1_SIZE) return `$STANDARD_INFORMATION is ${v.length} bytes, shorter than ${SI_V1_SIZE}`;
  const v3 = v.length >= SI_V3_SIZE;
  return {
    creationTime: readNtfsTime(v, SI.creation_time),
    lastDataChangeTime: readNtfsTime(v, SI.last_data_change_time),
    lastMftChangeTime: readNtfsTime(v, SI.last_mft_change_time),
    lastAccessTime: readNtfsTime(v, SI.last_access_time),
    fileAttributes: v.readUInt32LE(SI.file_attributes),
    ownerId: v3 ? v.readUInt32LE(SI.owner_id) : 0,
    securityId: v3 ? v.readUInt32LE(SI.security_id) : 0,
    quotaCharged: v3 ? v.readBigUInt64LE(SI.quota_charged) : 0n,
    usn: v3 ? v.readBigUInt64LE(SI.usn) : 0n,
    v3,
  };
}
