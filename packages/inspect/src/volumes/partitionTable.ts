/**
 * Which partition table a disk has, and its partitions. GPT is recognised by
 * a protective (or hybrid) MBR or an "EFI PART" header at LBA 1, with 512-
 * or 4096-byte logical sectors; an MBR by its 0x55AA signature unless sector
 * 0 is really the boot sector of a FAT or NTFS filesystem spanning the whole
 * disk (libblkid makes the same distinction). Anything else: no partition
 * table, and the whole device is probed as one filesystem.
 */
import type { BlockSource } from '@guestlens/block';
import { PartitionTableError } from '../errors.ts';
import { isFatBootSector } from '../probe/vfat.ts';
import { hasNtfsSignature } from '../probe/ntfs.ts';
import { hasGptSignature, readGpt } from './gpt.ts';
import { hasMbrSignature, hasValidBootIndicators, parseMbrEntries, PROTECTIVE_TYPE, readMbr } from './mbr.ts';
import type { PartitionTable } from './partition.ts';

export const SECTOR_SIZES = [512, 4096] as const;

export interface PartitionTableOptions {
  /**
   * The disk's logical sector size. GPT disks reveal it (the header sits at
   * LBA 1); an MBR does not, so MBR disks are read with 512 unless this says
   * otherwise.
   */
  sectorSize?: number;
}

export async function readPartitionTable(source: BlockSource, options: PartitionTableOptions = {}): Promise<PartitionTable> {
  const forced = options.sectorSize;
  if (forced !== undefined && !(SECTOR_SIZES as readonly number[]).includes(forced)) {
    throw new PartitionTableError(source.name, 0, `logical sector size ${forced} is not supported (use 512 or 4096)`);
  }
  const none: PartitionTable = { scheme: 'none', sectorSize: forced ?? 512, partitions: [], warnings: [] };
  if (source.size < 512) return none;
  const sector0 = await source.read(0, 512);
  const mbrSigned = hasMbrSignature(sector0);
  const entries = parseMbrEntries(sector0);
  const protective = mbrSigned && hasValidBootIndicators(entries) && entries.some((e) => e.type === PROTECTIVE_TYPE && e.sectorCount !== 0);

  if (protective) {
    const sectorSize = (await findGptHeader(source, forced)) ?? forced ?? (await sectorSizeFromBackup(source)) ?? 512;
    return readGpt(source, sectorSize);
  }
  if (mbrSigned) {
    if (isFatBootSector(sector0) || hasNtfsSignature(sector0)) return none;
    if (hasValidBootIndicators(entries)) {
      const table = await readMbr(source, sector0, forced ?? 512);
      // Linux and libblkid ignore a GPT that has no protective MBR: a leftover of an earlier partitioning.
      if ((await findGptHeader(source, forced)) !== undefined) table.warnings.push('a GPT header is present but the MBR does not protect it (no type 0xEE partition): it is ignored, the MBR is used');
      return table;
    }
  }
  const gptSectorSize = await findGptHeader(source, forced);
  if (gptSectorSize !== undefined) {
    const table = await readGpt(source, gptSectorSize);
    table.warnings.unshift('the disk has a GPT but no protective MBR (an MBR partition of type 0xEE); the GPT is used');
    return table;
  }
  return none;
}

/** The logical sector size whose LBA 1 holds a GPT header signature; when both do, the one whose header checks out. */
async function findGptHeader(source: BlockSource, forced: number | undefined): Promise<number | undefined> {
  const found: number[] = [];
  for (const size of forced ? [forced] : SECTOR_SIZES) {
    if (source.size < size * 2) continue;
    const lba1 = await source.read(size, 8);
    if (hasGptSignature(lba1)) found.push(size);
  }
  if (found.length <= 1) return found[0];
  for (const size of found) {
    try {
      const t = await readGpt(source, size);
      if (!t.warnings.some((w) => w.startsWith('the primary GPT'))) return size;
    } catch (err) {
      if (!(err instanceof PartitionTableError)) throw err;
    }
  }
  return found[0];
}

/** A protective MBR whose primary GPT is gone: the backup header at the last LBA tells the sector size. */
async function sectorSizeFromBackup(source: BlockSource): Promise<number | undefined> {
  for (const size of SECTOR_SIZES) {
    if (source.size < size * 2) continue;
    const last = Math.floor(source.size / size) - 1;
    if (hasGptSignature(await source.read(last * size, 8))) return size;
  }
  return undefined;
}
