/**
 * The PV label and PV header: "LABELONE" in one of the first four sectors,
 * checked with LVM's CRC and its own sector number, pointing to the PV
 * header in the same sector. The header gives the PV's UUID, the device size
 * LVM saw, and two zero-terminated lists of disk areas: where extents start
 * (the data area) and where the metadata areas are.
 */
import type { BlockSource } from '@guestlens/block';
import { LvmCorruptError } from './errors.ts';
import { LABEL, LABEL_ID, LABEL_SCAN_SECTORS, LABEL_SIZE, LIMITS, LVM2_LABEL_TYPE, PV_HEADER, PV_UUID_LENGTH, UUID_GROUPS, lvmCrc } from './layout.ts';

/** A byte range on the PV (struct disk_locn). `size` 0 means "to the end of the device" for a data area. */
export interface DiskLocn {
  offset: number;
  size: number;
}

export interface PvLabel {
  /** Sector (0-3) the label is in. */
  sector: number;
  /** Formatted as LVM prints it: 6-4-4-4-4-4-6. */
  pvUuid: string;
  /** Bytes, as LVM saw the device when it wrote the label. */
  deviceSize: number;
  dataAreas: DiskLocn[];
  metadataAreas: DiskLocn[];
}

/** A valid label sector in the first four sectors of `head` (the probe and the reader share this test). */
export function findLabel(head: Buffer): { sector: number; label: Buffer } | undefined {
  for (let sector = 0; sector < LABEL_SCAN_SECTORS && (sector + 1) * LABEL_SIZE <= head.length; sector++) {
    const label = head.subarray(sector * LABEL_SIZE, (sector + 1) * LABEL_SIZE);
    if (label.toString('latin1', LABEL.id, LABEL.id + 8) !== LABEL_ID) continue;
    if (label.readBigUInt64LE(LABEL.sector_xl) !== BigInt(sector)) continue;
    if (label.toString('latin1', LABEL.type, LABEL.type + 8) !== LVM2_LABEL_TYPE) continue;
    if (lvmCrc(label.subarray(LABEL.crcFrom)) !== label.readUInt32LE(LABEL.crc_xl)) continue;
    const pvHeader = label.readUInt32LE(LABEL.offset_xl);
    if (pvHeader < LABEL.headerSize || pvHeader + PV_UUID_LENGTH > LABEL_SIZE) continue;
    return { sector, label };
  }
  return undefined;
}

/** The 32 UUID characters grouped as LVM prints them. */
export function formatLvmUuid(id: string): string {
  const parts: string[] = [];
  let at = 0;
  for (const len of UUID_GROUPS) {
    parts.push(id.slice(at, at + len));
    at += len;
  }
  return parts.join('-');
}

/** The characters of LVM's ids (lib/uuid/uuid.c). */
const UUID_CHARS = /^[A-Za-z0-9!#]{32}$/;

/** The label and PV header of a PV, or undefined when the device has no LVM2 label. */
export async function readPvLabel(source: BlockSource): Promise<PvLabel | undefined> {
  const scan = LABEL_SIZE * LABEL_SCAN_SECTORS;
  if (source.size < scan) return undefined;
  const found = findLabel(await source.read(0, scan));
  if (!found) return undefined;
  return parsePvHeader(source, found.sector, found.label);
}

function parsePvHeader(source: BlockSource, sector: number, label: Buffer): PvLabel {
  const base = label.readUInt32LE(LABEL.offset_xl);
  const at = sector * LABEL_SIZE + base;
  const corrupt = (reason: string) => new LvmCorruptError(source.name, 'PV header', at, reason);
  const id = label.toString('latin1', base + PV_HEADER.pv_uuid, base + PV_HEADER.pv_uuid + PV_UUID_LENGTH);
  if (!UUID_CHARS.test(id)) throw corrupt('its UUID has characters LVM never writes');
  if (base + PV_HEADER.disk_areas_xl > LABEL_SIZE) throw corrupt('it runs past the end of the label sector');
  const deviceSize = safe(label.readBigUInt64LE(base + PV_HEADER.device_size_xl), 'device size', corrupt);
  let pos = base + PV_HEADER.disk_areas_xl;
  const lists: DiskLocn[][] = [[], []];
  for (const list of lists) {
    for (;;) {
      if (pos + PV_HEADER.diskLocnSize > LABEL_SIZE) throw corrupt('a list of disk areas is not terminated inside the label sector');
      const offset = label.readBigUInt64LE(pos);
      const size = label.readBigUInt64LE(pos + 8);
      pos += PV_HEADER.diskLocnSize;
      if (offset === 0n) break;
      if (list.length >= LIMITS.diskAreas) throw corrupt(`more than ${LIMITS.diskAreas} disk areas in one list`);
      list.push({ offset: safe(offset, 'disk area offset', corrupt), size: safe(size, 'disk area size', corrupt) });
    }
  }
  return { sector, pvUuid: formatLvmUuid(id), deviceSize, dataAreas: lists[0], metadataAreas: lists[1] };
}

function safe(value: bigint, what: string, corrupt: (reason: string) => Error): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`${what} ${value} is beyond what guestlens supports (2^53)`);
  return Number(value);
}
