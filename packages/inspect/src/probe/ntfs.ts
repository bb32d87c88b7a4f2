/**
 * NTFS: "NTFS    " in the boot sector, a sane BIOS parameter block, and the
 * $Volume record (MFT record 3) for the label. The UUID blkid prints is the
 * 64-bit volume serial number in hex. Offsets, magics and the decoding of the
 * BPB's size fields come from the driver's layout table
 * (filesystems/ntfs/layout.ts), so the probe and the driver cannot disagree.
 */
import {
  ATTR,
  ATTR_TYPE,
  BOOT,
  BOOT_SECTOR_SIZE,
  FILE_VOLUME,
  MAGIC_FILE,
  MAX_CLUSTER_SIZE,
  MFT,
  NTFS_BLOCK_SIZE,
  RECORD,
  decodeRecordSize,
  decodeSectorsPerCluster,
  formatSerialNumber,
  hasNtfsOemId,
} from '../filesystems/ntfs/layout.ts';
import type { ProbeReader } from './reader.ts';
import type { ProbeResult } from './result.ts';
import { labelFromUtf16 } from './text.ts';

const MAX_MFT_RECORD_SIZE = 64 * 1024;
/** blkid accepts sectors_per_cluster codes up to 249 (2^7 sectors), not the 253 ntfs-3g allows. */
const BLKID_MAX_CLUSTER_CODE = 249;

export function hasNtfsSignature(boot: Buffer): boolean {
  return hasNtfsOemId(boot);
}

export async function probeNtfs(r: ProbeReader): Promise<ProbeResult | undefined> {
  const boot = await r.read(0, BOOT_SECTOR_SIZE);
  if (!boot || !hasNtfsSignature(boot)) return undefined;
  const sectorSize = boot.readUInt16LE(BOOT.bytes_per_sector);
  if (sectorSize < 256 || sectorSize > 4096) return undefined;
  const sectorsPerCluster = decodeSectorsPerCluster(boot[BOOT.sectors_per_cluster], BLKID_MAX_CLUSTER_CODE);
  if (sectorsPerCluster === undefined) return undefined;
  const clusterSize = sectorSize * sectorsPerCluster;
  if (clusterSize > MAX_CLUSTER_SIZE) return undefined;
  // Fields FAT uses must be zero on NTFS.
  if (
    boot.readUInt16LE(BOOT.reserved_sectors) ||
    boot.readUInt16LE(BOOT.root_entries) ||
    boot.readUInt16LE(BOOT.sectors) ||
    boot.readUInt16LE(BOOT.sectors_per_fat) ||
    boot.readUInt32LE(BOOT.large_sectors) ||
    boot[BOOT.fats]
  ) {
    return undefined;
  }

  const mftRecordSize = decodeRecordSize(boot[BOOT.clusters_per_mft_record], clusterSize);
  if (mftRecordSize === undefined || mftRecordSize > MAX_MFT_RECORD_SIZE) return undefined;

  const nrClusters = boot.readBigUInt64LE(BOOT.number_of_sectors) / BigInt(sectorsPerCluster);
  const mftCluster = boot.readBigUInt64LE(BOOT.mft_lcn);
  if (mftCluster > nrClusters || boot.readBigUInt64LE(BOOT.mftmirr_lcn) > nrClusters) return undefined;
  const mftOffset = Number(mftCluster) * clusterSize;
  if (!Number.isSafeInteger(mftOffset)) return undefined;
  const mft0 = await r.read(mftOffset, mftRecordSize);
  if (!mft0 || mft0.toString('latin1', 0, 4) !== MAGIC_FILE) return undefined;
  const volumeRecord = await r.read(mftOffset + FILE_VOLUME * mftRecordSize, mftRecordSize);
  if (!volumeRecord || volumeRecord.toString('latin1', 0, 4) !== MAGIC_FILE) return undefined;

  return {
    type: 'ntfs',
    usage: 'filesystem',
    label: volumeName(applyFixups(volumeRecord)),
    uuid: formatSerialNumber(boot.readBigUInt64LE(BOOT.volume_serial_number)),
    blockSize: sectorSize,
  };
}

/**
 * NTFS protects multi-sector records by replacing the last two bytes of each
 * sector with an update sequence number; the original bytes live in the
 * update sequence array. Put them back (on a copy); a mismatch leaves the
 * record as it is, as the label is almost always in the first sector anyway
 * (blkid is as lenient).
 */
function applyFixups(record: Buffer): Buffer {
  const usaOffset = record.readUInt16LE(RECORD.usa_ofs);
  const usaCount = record.readUInt16LE(RECORD.usa_count);
  if (usaCount < 2 || usaOffset + usaCount * 2 > record.length) return record;
  if ((usaCount - 1) * NTFS_BLOCK_SIZE > record.length) return record;
  const fixed = Buffer.from(record);
  const usn = record.readUInt16LE(usaOffset);
  for (let i = 1; i < usaCount; i++) {
    const at = i * NTFS_BLOCK_SIZE - 2;
    if (record.readUInt16LE(at) !== usn) return record;
    fixed.writeUInt16LE(record.readUInt16LE(usaOffset + i * 2), at);
  }
  return fixed;
}

function volumeName(record: Buffer): string | undefined {
  const size = record.length;
  const bytesAllocated = record.readUInt32LE(MFT.bytes_allocated);
  let at = record.readUInt16LE(MFT.attrs_offset);
  // Each attribute has a non-zero length, so the walk ends within the record.
  while (at + 24 <= size && at <= bytesAllocated) {
    const type = record.readUInt32LE(at + ATTR.type);
    const len = record.readUInt32LE(at + ATTR.length);
    if (len === 0 || type === ATTR_TYPE.END) return undefined;
    if (type === ATTR_TYPE.VOLUME_NAME) {
      const valueLength = record.readUInt32LE(at + ATTR.value_length);
      const valueOffset = record.readUInt16LE(at + ATTR.value_offset);
      if (at + valueOffset + valueLength > size) return undefined;
      return labelFromUtf16(record.subarray(at + valueOffset, at + valueOffset + valueLength));
    }
    at += len;
  }
  return undefined;
}
