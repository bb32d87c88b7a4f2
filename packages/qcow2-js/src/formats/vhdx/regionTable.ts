/**
 * The region table (the first copy, at 192 KiB, as QEMU reads it): where
 * the BAT and the metadata region are. Regions may not overlap each other
 * or the log; a required region guestlens does not know means the image
 * cannot be read correctly, so it is refused, as the specification says.
 */
import type { BlockSource } from '@guestlens/block';
import { formatError, toSafeOffset, unsupportedError } from '../../errors.ts';
import { guidString } from '../common/guid.ts';
import { vhdxChecksum } from './header.ts';
import { BAT_GUID, MAX_REGION_ENTRIES, METADATA_GUID, REGION_ENTRY_BYTES, REGION_REQUIRED, REGION_SIGNATURE, REGION_TABLE1_OFFSET, REGION_TABLE_BYTES } from './layout.ts';

export interface Region {
  offset: number;
  length: number;
}

export interface RegionTable {
  bat: Region;
  metadata: Region;
  /** Every region the file holds (header section, log, BAT, metadata, others): payload blocks must not overlap them. */
  occupied: Region[];
}

export async function readRegionTable(file: BlockSource, log: Region, image: string): Promise<RegionTable> {
  const at = REGION_TABLE1_OFFSET;
  if (file.size < at + REGION_TABLE_BYTES) throw formatError(image, `file ends before the region table (${file.size} bytes)`, at);
  const buf = await file.read(at, REGION_TABLE_BYTES);
  if (buf.toString('latin1', 0, 4) !== REGION_SIGNATURE) throw formatError(image, 'no region table ("regi") at 192 KiB', at);
  const stored = buf.readUInt32LE(4);
  if (vhdxChecksum(buf) !== stored) throw formatError(image, `region table CRC-32C does not match (stored 0x${stored.toString(16)})`, at + 4);
  const count = buf.readUInt32LE(8);
  if (count > MAX_REGION_ENTRIES) throw formatError(image, `region table has ${count} entries (at most ${MAX_REGION_ENTRIES})`, at + 8);
  const occupied: Region[] = [{ offset: 0, length: 1024 * 1024 }];
  if (log.length) occupied.push(log);
  let bat: Region | undefined;
  let metadata: Region | undefined;
  for (let i = 0; i < count; i++) {
    const p = 16 + i * REGION_ENTRY_BYTES;
    const entryAt = at + p;
    const guid = buf.subarray(p, p + 16);
    const region = {
      offset: toSafeOffset(buf.readBigUInt64LE(p + 16), image, `region ${i} offset`, entryAt + 16),
      length: buf.readUInt32LE(p + 24),
    };
    const required = (buf.readUInt32LE(p + 28) & REGION_REQUIRED) !== 0;
    const clash = occupied.find((r) => region.offset < r.offset + r.length && r.offset < region.offset + region.length);
    if (clash) throw formatError(image, `region ${i} (${region.length} bytes at ${region.offset}) overlaps the region at ${clash.offset} (${clash.length} bytes)`, entryAt);
    occupied.push(region);
    if (guid.equals(BAT_GUID)) {
      if (bat) throw formatError(image, 'the region table names two BATs', entryAt);
      bat = region;
    } else if (guid.equals(METADATA_GUID)) {
      if (metadata) throw formatError(image, 'the region table names two metadata regions', entryAt);
      metadata = region;
    } else if (required) {
      throw unsupportedError(image, `requires region ${guidString(guid)}, which guestlens does not know`, entryAt);
    }
  }
  if (!bat || !metadata) throw formatError(image, `the region table names no ${bat ? 'metadata region' : 'BAT'}`, at);
  return { bat, metadata, occupied };
}
