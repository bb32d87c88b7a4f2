/**
 * The boot sector ($Boot's first sector): geometry of the volume, where $MFT
 * and $MFTMirr are, record sizes and the serial number. Checked as ntfs-3g
 * checks it before mounting (ntfs_boot_sector_is_ntfs and _parse), so what
 * ntfs-3g refuses we refuse too, with the reason. NTFS keeps a backup copy in
 * the last sector of the partition (after the volume's last sector); when the
 * first is unusable the backup is used, as Windows' chkdsk and the kernel's
 * ntfs3 driver do, and a warning says so.
 */
import type { BlockSource } from '@guestlens/block';
import { NtfsCorruptError, NtfsError } from './errors.ts';
import {
  BOOT,
  BOOT_SECTOR_SIZE,
  MAX_CLUSTER_SIZE,
  decodeRecordSize,
  decodeSectorsPerCluster,
  formatSerialNumber,
  hasNtfsOemId,
} from './layout.ts';

export interface BootSector {
  bytesPerSector: number;
  sectorsPerCluster: number;
  clusterSize: number;
  clusterBits: number;
  /** Sectors of the volume (the partition holds one more: the backup boot sector). */
  numberOfSectors: number;
  /** number_of_sectors / sectors_per_cluster, rounded down (ntfs-3g's nr_clusters). */
  nrClusters: number;
  mftLcn: number;
  mftMirrLcn: number;
  mftRecordSize: number;
  mftRecordBits: number;
  indexRecordSize: number;
  /** Records mirrored in $MFTMirr: 4, or one cluster's worth when a cluster holds more. */
  mftMirrSize: number;
  serialNumber: bigint;
  /** The serial number as blkid prints it (16 upper-case hex digits). */
  uuid: string | undefined;
  /** Where this boot sector was read: 0, or the backup's offset. */
  offset: number;
}

/** Why a buffer is not a usable NTFS boot sector, or the parsed sector. */
export function parseBootSector(b: Buffer, deviceSize: number, offset = 0): BootSector | string {
  if (b.length < BOOT_SECTOR_SIZE) return 'shorter than a sector';
  if (!hasNtfsOemId(b)) return 'no "NTFS    " signature';
  const bytesPerSector = b.readUInt16LE(BOOT.bytes_per_sector);
  if (bytesPerSector < 256 || bytesPerSector > 4096 || (bytesPerSector & (bytesPerSector - 1)) !== 0) return `unexpected bytes per sector (${bytesPerSector})`;
  const spcCode = b[BOOT.sectors_per_cluster];
  const sectorsPerCluster = decodeSectorsPerCluster(spcCode);
  if (sectorsPerCluster === undefined) return `unexpected sectors per cluster (code 0x${spcCode.toString(16)})`;
  const clusterSize = bytesPerSector * sectorsPerCluster;
  if (clusterSize > MAX_CLUSTER_SIZE) return `unexpected cluster size (${clusterSize})`;
  if (b.readUInt16LE(BOOT.reserved_sectors) || b.readUInt16LE(BOOT.root_entries) || b.readUInt16LE(BOOT.sectors) || b.readUInt16LE(BOOT.sectors_per_fat) || b.readUInt32LE(BOOT.large_sectors) || b[BOOT.fats]) {
    return 'reserved fields (those FAT uses) are not zero';
  }
  const mftRecordSize = decodeRecordSize(b[BOOT.clusters_per_mft_record], clusterSize);
  if (mftRecordSize === undefined) return `unexpected clusters per MFT record (${b[BOOT.clusters_per_mft_record]})`;
  const indexRecordSize = decodeRecordSize(b[BOOT.clusters_per_index_record], clusterSize);
  if (indexRecordSize === undefined) return `unexpected clusters per index record (${b[BOOT.clusters_per_index_record]})`;
  // Records larger than 64 KiB exist nowhere; refusing them bounds every record buffer.
  if (mftRecordSize < 512 || mftRecordSize > 65536) return `MFT record size ${mftRecordSize} is outside 512..65536`;
  if (indexRecordSize < 512 || indexRecordSize > 65536) return `index record size ${indexRecordSize} is outside 512..65536`;
  const mftLcnRaw = b.readBigInt64LE(BOOT.mft_lcn);
  const mirrLcnRaw = b.readBigInt64LE(BOOT.mftmirr_lcn);
  if (mftLcnRaw <= 0n || mirrLcnRaw <= 0n || mftLcnRaw === mirrLcnRaw) return 'invalid location of $MFT or $MFTMirr';
  const sectorsRaw = b.readBigInt64LE(BOOT.number_of_sectors);
  if (sectorsRaw <= 0n) return 'volume size is zero';
  if (sectorsRaw > BigInt(Number.MAX_SAFE_INTEGER)) return `number of sectors ${sectorsRaw} is beyond 2^53`;
  const numberOfSectors = Number(sectorsRaw);
  if (numberOfSectors * bytesPerSector > deviceSize) {
    return `the volume (${numberOfSectors} sectors of ${bytesPerSector} bytes) is larger than the device (${deviceSize} bytes): a partition table that cuts it short, or a wrong size in the boot sector`;
  }
  const nrClusters = Math.floor(numberOfSectors / sectorsPerCluster);
  if (mftLcnRaw > BigInt(nrClusters) || mirrLcnRaw > BigInt(nrClusters)) return `$MFT LCN (${mftLcnRaw}) or $MFTMirr LCN (${mirrLcnRaw}) is beyond the ${nrClusters} clusters of the volume`;
  const serialNumber = b.readBigUInt64LE(BOOT.volume_serial_number);
  return {
    bytesPerSector,
    sectorsPerCluster,
    clusterSize,
    clusterBits: Math.log2(clusterSize),
    numberOfSectors,
    nrClusters,
    mftLcn: Number(mftLcnRaw),
    mftMirrLcn: Number(mirrLcnRaw),
    mftRecordSize,
    mftRecordBits: Math.log2(mftRecordSize),
    indexRecordSize,
    mftMirrSize: clusterSize <= 4 * mftRecordSize ? 4 : clusterSize / mftRecordSize,
    serialNumber,
    uuid: formatSerialNumber(serialNumber),
    offset,
  };
}

export interface BootSectorRead {
  boot: BootSector;
  /** Set when the backup was used: why the first was not. */
  primaryProblem?: string;
}

/**
 * The boot sector of the volume on `source`: the first sector, or when that
 * is unusable the backup in the device's last sector (for 512-byte and
 * 4096-byte sectors). The backup must describe a volume that ends just
 * before it, or it is not this volume's.
 */
export async function readBootSector(source: BlockSource, retryable: boolean): Promise<BootSectorRead> {
  if (source.size < BOOT_SECTOR_SIZE) throw new NtfsError('EINVAL', source.name, `too small (${source.size} bytes) to hold an NTFS boot sector`);
  const primary = parseBootSector(await source.read(0, BOOT_SECTOR_SIZE), source.size, 0);
  if (typeof primary !== 'string') return { boot: primary };
  for (const sector of [512, 4096]) {
    const at = Math.floor(source.size / sector) * sector - sector;
    if (at <= 0) continue;
    const backup = parseBootSector(await source.read(at, BOOT_SECTOR_SIZE), source.size, at);
    if (typeof backup === 'string') continue;
    if (backup.numberOfSectors * backup.bytesPerSector > at) continue;
    return { boot: backup, primaryProblem: primary };
  }
  throw new NtfsCorruptError(source.name, 'boot sector', 0, `${primary}, and no usable backup boot sector at the end of the device`, { retryable });
}
