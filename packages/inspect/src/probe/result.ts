/**
 * What the probe says about a device, named as `blkid -p -o export` names
 * it: TYPE, USAGE, LABEL, UUID, UUID_SUB, VERSION, SEC_TYPE, BLOCK_SIZE,
 * LABEL_FATBOOT, EXT_JOURNAL, LOGUUID. Values are formatted exactly as blkid prints them.
 */
export type ProbeUsage = 'filesystem' | 'raid' | 'other' | 'crypto';

export interface ProbeResult {
  /** blkid's TYPE: ext2, ext3, ext4, xfs, vfat, ntfs, btrfs, swap, LVM2_member, ..., or 'unknown'. */
  type: string;
  /** blkid's USAGE; undefined for 'unknown'. */
  usage?: ProbeUsage;
  label?: string;
  uuid?: string;
  /** btrfs: the device's own UUID (the filesystem's is `uuid`). */
  uuidSub?: string;
  version?: string;
  /** A secondary type the data also is (ext3 → ext2, FAT12/16 → msdos). */
  secType?: string;
  blockSize?: number;
  /** ext3/4: the UUID of an external journal (blkid's EXT_JOURNAL). */
  extJournal?: string;
  /** jbd (an external ext journal): its UUID again, as blkid's LOGUUID. */
  logUuid?: string;
  /** vfat: the label in the boot sector, which may differ from the root directory's. */
  labelFatboot?: string;
}

export const UNKNOWN: ProbeResult = Object.freeze({ type: 'unknown' }) as ProbeResult;
