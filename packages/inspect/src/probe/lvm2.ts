/**
 * An LVM2 physical volume: a "LABELONE" label in one of the first four
 * 512-byte sectors, checked with LVM's own CRC, pointing to the PV header
 * that holds the PV's UUID (32 characters, printed 6-4-4-4-4-4-6). The
 * label test and its constants are the volume reader's (volumes/lvm/), so
 * the probe and the reader cannot disagree about what a PV is.
 */
import { findLabel, formatLvmUuid } from '../volumes/lvm/label.ts';
import { LABEL, LABEL_SCAN_SECTORS, LABEL_SIZE, LVM2_LABEL_TYPE, PV_HEADER, PV_UUID_LENGTH } from '../volumes/lvm/layout.ts';
import type { ProbeReader } from './reader.ts';
import type { ProbeResult } from './result.ts';

export { lvmCrc } from '../volumes/lvm/layout.ts';

export async function probeLvm2(r: ProbeReader): Promise<ProbeResult | undefined> {
  const buf = await r.read(0, LABEL_SIZE * LABEL_SCAN_SECTORS);
  if (!buf) return undefined;
  const found = findLabel(buf);
  if (!found) return undefined;
  // Like blkid, the UUID is shown as stored, whatever its characters; the reader is stricter.
  const at = found.label.readUInt32LE(LABEL.offset_xl) + PV_HEADER.pv_uuid;
  const id = found.label.toString('latin1', at, at + PV_UUID_LENGTH);
  return { type: 'LVM2_member', usage: 'raid', version: LVM2_LABEL_TYPE, uuid: formatLvmUuid(id) };
}
