/**
 * An LVM2 physical volume: a "LABELONE" label in one of the first four
 * 512-byte sectors, checked with LVM's own CRC, pointing to the PV header
 * that holds the PV's UUID (32 characters, printed 6-4-4-4-4-4-6).
 */
import { crc32 } from 'node:zlib';
import type { ProbeReader } from './reader.ts';
import type { ProbeResult } from './result.ts';

const LABEL_SECTOR_SIZE = 512;
const LABEL_SCAN_SECTORS = 4;
const LVM2_TYPE = 'LVM2 001';
/** LVM's CRC: CRC-32 (the zlib polynomial) seeded with this value and without the final inversion. */
const LVM_INITIAL_CRC = 0xf597a6cf;
const PV_UUID_LENGTH = 32;

/** calc_crc() of LVM2's lib/misc/crc.c, by way of zlib's crc32 (which inverts on the way in and out). */
export function lvmCrc(data: Buffer, initial = LVM_INITIAL_CRC): number {
  return ~crc32(data, ~initial >>> 0) >>> 0;
}

export async function probeLvm2(r: ProbeReader): Promise<ProbeResult | undefined> {
  const buf = await r.read(0, LABEL_SECTOR_SIZE * LABEL_SCAN_SECTORS);
  if (!buf) return undefined;
  for (let sector = 0; sector < LABEL_SCAN_SECTORS; sector++) {
    const label = buf.subarray(sector * LABEL_SECTOR_SIZE, (sector + 1) * LABEL_SECTOR_SIZE);
    if (label.toString('latin1', 0, 8) !== 'LABELONE') continue;
    if (label.readBigUInt64LE(8) !== BigInt(sector)) continue;
    if (label.toString('latin1', 24, 32) !== LVM2_TYPE) continue;
    if (lvmCrc(label.subarray(20)) !== label.readUInt32LE(16)) continue;
    const pvHeaderOffset = label.readUInt32LE(20);
    if (pvHeaderOffset < 32 || pvHeaderOffset + PV_UUID_LENGTH > LABEL_SECTOR_SIZE) continue;
    const id = label.toString('latin1', pvHeaderOffset, pvHeaderOffset + PV_UUID_LENGTH);
    return { type: 'LVM2_member', usage: 'raid', version: LVM2_TYPE, uuid: formatPvUuid(id) };
  }
  return undefined;
}

function formatPvUuid(id: string): string {
  const groups = [6, 4, 4, 4, 4, 4, 6];
  const parts: string[] = [];
  let at = 0;
  for (const len of groups) {
    parts.push(id.slice(at, at + len));
    at += len;
  }
  return parts.join('-');
}
