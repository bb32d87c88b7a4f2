/**
 * NTFS: "NTFS    " in the boot sector, a sane BIOS parameter block, and the
 * $Volume record (MFT record 3) for the label. The UUID blkid prints is the
 * 64-bit volume serial number in hex.
 */
import type { ProbeReader } from './reader.ts';
import type { ProbeResult } from './result.ts';
import { labelFromUtf16 } from './text.ts';

const MFT_RECORD_VOLUME = 3;
const ATTR_VOLUME_NAME = 0x60;
const ATTR_END = 0xffffffff;
const MAX_CLUSTER_SIZE = 2 * 1024 * 1024;
const MAX_MFT_RECORD_SIZE = 64 * 1024;

export function hasNtfsSignature(boot: Buffer): boolean {
  return boot.length >= 11 && boot.toString('latin1', 3, 11) === 'NTFS    ';
}

export async function probeNtfs(r: ProbeReader): Promise<ProbeResult | undefined> {
  const boot = await r.read(0, 512);
  if (!boot || !hasNtfsSignature(boot)) return undefined;
  const sectorSize = boot.readUInt16LE(0x0b);
  if (sectorSize < 256 || sectorSize > 4096) return undefined;
  const spcRaw = boot[0x0d];
  let sectorsPerCluster: number;
  if (spcRaw > 0 && spcRaw <= 128 && (spcRaw & (spcRaw - 1)) === 0) sectorsPerCluster = spcRaw;
  else if (spcRaw >= 240 && spcRaw <= 249) sectorsPerCluster = 2 ** (256 - spcRaw);
  else return undefined;
  const clusterSize = sectorSize * sectorsPerCluster;
  if (clusterSize > MAX_CLUSTER_SIZE) return undefined;
  // Fields FAT uses must be zero on NTFS.
  if (boot.readUInt16LE(0x0e) || boot.readUInt16LE(0x11) || boot.readUInt16LE(0x13) || boot.readUInt16LE(0x16) || boot.readUInt32LE(0x20) || boot[0x10]) return undefined;

  const cpmr = boot.readInt8(0x40);
  let mftRecordSize: number;
  if (cpmr > 0) {
    if (![1, 2, 4, 8, 16, 32, 64].includes(cpmr)) return undefined;
    mftRecordSize = cpmr * clusterSize;
  } else {
    if (cpmr < -31 || cpmr > -9) return undefined;
    mftRecordSize = 2 ** -cpmr;
  }
  if (mftRecordSize > MAX_MFT_RECORD_SIZE) return undefined;

  const nrClusters = boot.readBigUInt64LE(0x28) / BigInt(sectorsPerCluster);
  const mftCluster = boot.readBigUInt64LE(0x30);
  if (mftCluster > nrClusters || boot.readBigUInt64LE(0x38) > nrClusters) return undefined;
  const mftOffset = Number(mftCluster) * clusterSize;
  if (!Number.isSafeInteger(mftOffset)) return undefined;
  const mft0 = await r.read(mftOffset, mftRecordSize);
  if (!mft0 || mft0.toString('latin1', 0, 4) !== 'FILE') return undefined;
  const volumeRecord = await r.read(mftOffset + MFT_RECORD_VOLUME * mftRecordSize, mftRecordSize);
  if (!volumeRecord || volumeRecord.toString('latin1', 0, 4) !== 'FILE') return undefined;

  const serial = boot.readBigUInt64LE(0x48);
  return {
    type: 'ntfs',
    usage: 'filesystem',
    label: volumeName(applyFixups(volumeRecord)),
    uuid: serial === 0n ? undefined : serial.toString(16).toUpperCase().padStart(16, '0'),
    blockSize: sectorSize,
  };
}

/**
 * NTFS protects multi-sector records by replacing the last two bytes of each
 * sector with an update sequence number; the original bytes live in the
 * update sequence array. Put them back (on a copy); a mismatch leaves the
 * record as it is, as the label is almost always in the first sector anyway.
 */
function applyFixups(record: Buffer): Buffer {
  const usaOffset = record.readUInt16LE(4);
  const usaCount = record.readUInt16LE(6);
  if (usaCount < 2 || usaOffset + usaCount * 2 > record.length) return record;
  // The update sequence stride is 512 bytes whatever the sector size.
  const stride = 512;
  if ((usaCount - 1) * stride > record.length) return record;
  const fixed = Buffer.from(record);
  const usn = record.readUInt16LE(usaOffset);
  for (let i = 1; i < usaCount; i++) {
    const at = i * stride - 2;
    if (record.readUInt16LE(at) !== usn) return record;
    fixed.writeUInt16LE(record.readUInt16LE(usaOffset + i * 2), at);
  }
  return fixed;
}

function volumeName(record: Buffer): string | undefined {
  const size = record.length;
  const bytesAllocated = record.readUInt32LE(28);
  let at = record.readUInt16LE(20);
  // Each attribute has a non-zero length, so the walk ends within the record.
  while (at + 24 <= size && at <= bytesAllocated) {
    const type = record.readUInt32LE(at);
    const len = record.readUInt32LE(at + 4);
    if (len === 0 || type === ATTR_END) return undefined;
    if (type === ATTR_VOLUME_NAME) {
      const valueLength = record.readUInt32LE(at + 16);
      const valueOffset = record.readUInt16LE(at + 20);
      if (at + valueOffset + valueLength > size) return undefined;
      return labelFromUtf16(record.subarray(at + valueOffset, at + valueOffset + valueLength));
    }
    at += len;
  }
  return undefined;
}
