/**
 * MBR ("dos") partition tables: four primary slots at byte 446 of sector 0,
 * and a chain of extended boot records (EBRs) inside an extended partition
 * holding the logical partitions, numbered from 5 as Linux numbers them.
 *
 * Damage is handled as Linux's block/partitions/msdos.c handles it, with a
 * warning instead of a kernel message: partitions starting past the disk end
 * are dropped, ones running past it truncated; an EBR chain that loops or
 * runs on is cut.
 */
import type { BlockSource } from '@guestlens/block';
import { MAX_PARTITIONS, type Partition, type PartitionTable } from './partition.ts';

const MBR_SIZE = 512;
const ENTRIES_OFFSET = 446;
const ENTRY_SIZE = 16;
const DISK_SIGNATURE_OFFSET = 440;
const MAX_EMPTY_EBRS = 100;

/** Type bytes Linux treats as an extended partition (DOS, Win98 LBA, Linux). */
const EXTENDED_TYPES = new Set([0x05, 0x0f, 0x85]);
export const PROTECTIVE_TYPE = 0xee;

export interface MbrEntry {
  /** 0..3, the position in its sector. */
  slot: number;
  bootIndicator: number;
  type: number;
  startLba: number;
  sectorCount: number;
}

export function hasMbrSignature(sector0: Buffer): boolean {
  return sector0.length >= MBR_SIZE && sector0[510] === 0x55 && sector0[511] === 0xaa;
}

export function parseMbrEntries(sector: Buffer): MbrEntry[] {
  const entries: MbrEntry[] = [];
  for (let slot = 0; slot < 4; slot++) {
    const at = ENTRIES_OFFSET + slot * ENTRY_SIZE;
    entries.push({
      slot,
      bootIndicator: sector[at],
      type: sector[at + 4],
      startLba: sector.readUInt32LE(at + 8),
      sectorCount: sector.readUInt32LE(at + 12),
    });
  }
  return entries;
}

export function isExtendedType(type: number): boolean {
  return EXTENDED_TYPES.has(type);
}

/** Boot indicators other than 0 and 0x80 mean sector 0 is not a partition table (it is boot code or a FAT boot sector). */
export function hasValidBootIndicators(entries: MbrEntry[]): boolean {
  return entries.every((e) => e.bootIndicator === 0 || e.bootIndicator === 0x80);
}

export function mbrDiskId(sector0: Buffer): string {
  return `0x${sector0.readUInt32LE(DISK_SIGNATURE_OFFSET).toString(16).padStart(8, '0')}`;
}

/** Read an MBR partition table whose sector 0 is `sector0` (already known to carry the 0x55AA signature). */
export async function readMbr(source: BlockSource, sector0: Buffer, sectorSize: number): Promise<PartitionTable> {
  const warnings: string[] = [];
  const diskSectors = Math.floor(source.size / sectorSize);
  const partitions: Partition[] = [];
  const primaries = parseMbrEntries(sector0);

  const place = (number: number, kind: Partition['kind'], entry: MbrEntry, startSector: number): Partition | undefined => {
    const where = kind === 'logical' ? `logical partition ${number}` : `partition ${number}`;
    if (startSector >= diskSectors) {
      warnings.push(`${where} starts at sector ${startSector}, beyond the end of the disk (${diskSectors} sectors of ${sectorSize} bytes): ignored`);
      return undefined;
    }
    let sectorCount = entry.sectorCount;
    if (startSector + sectorCount > diskSectors) {
      warnings.push(`${where} (sectors ${startSector}..${startSector + sectorCount - 1}) runs past the end of the disk (${diskSectors} sectors): truncated`);
      sectorCount = diskSectors - startSector;
    }
    const p: Partition = {
      number,
      kind,
      startSector,
      sectorCount,
      offset: startSector * sectorSize,
      size: sectorCount * sectorSize,
      mbrType: entry.type,
      bootable: entry.bootIndicator === 0x80,
    };
    partitions.push(p);
    return p;
  };

  const extendeds: Partition[] = [];
  for (const e of primaries) {
    // Linux uses a slot when its size is non-zero, whatever the type byte says.
    if (e.sectorCount === 0) continue;
    const p = place(e.slot + 1, isExtendedType(e.type) ? 'extended' : 'primary', e, e.startLba);
    if (p?.kind === 'extended') extendeds.push(p);
  }

  let nextLogical = 5;
  for (const ext of extendeds) {
    nextLogical = await readLogicalPartitions(source, ext, sectorSize, diskSectors, nextLogical, place, warnings);
  }
  return { scheme: 'mbr', sectorSize, diskId: mbrDiskId(sector0), partitions, warnings };
}

/**
 * Walk the EBR chain of one extended partition. Each EBR describes one
 * logical partition (relative to the EBR) and links to the next EBR
 * (relative to the start of the extended partition).
 */
async function readLogicalPartitions(
  source: BlockSource,
  extended: Partition,
  sectorSize: number,
  diskSectors: number,
  firstNumber: number,
  place: (number: number, kind: Partition['kind'], entry: MbrEntry, startSector: number) => Partition | undefined,
  warnings: string[],
): Promise<number> {
  const extStart = extended.startSector;
  const extEnd = extStart + extended.sectorCount;
  const visited = new Set<number>();
  let number = firstNumber;
  let ebrSector = extStart;

  for (let hop = 0; ; hop++) {
    if (number > MAX_PARTITIONS) {
      warnings.push(`more than ${MAX_PARTITIONS} partitions: the EBR chain of extended partition ${extended.number} was cut at sector ${ebrSector}`);
      break;
    }
    // Empty EBRs linking on without end (Linux gives up after 100 in a row): bounded whatever the chain looks like.
    if (hop >= MAX_PARTITIONS + MAX_EMPTY_EBRS) {
      warnings.push(`the EBR chain of extended partition ${extended.number} runs on past ${hop} records: cut at sector ${ebrSector}`);
      break;
    }
    if (visited.has(ebrSector)) {
      warnings.push(`the EBR chain of extended partition ${extended.number} loops back to sector ${ebrSector}: cut there`);
      break;
    }
    visited.add(ebrSector);
    if (ebrSector < extStart || ebrSector >= extEnd || (ebrSector + 1) * sectorSize > source.size) {
      warnings.push(`an EBR of extended partition ${extended.number} points to sector ${ebrSector}, outside the extended partition (sectors ${extStart}..${extEnd - 1}) or the disk: chain cut`);
      break;
    }
    const ebr = await source.read(ebrSector * sectorSize, MBR_SIZE);
    if (!hasMbrSignature(ebr)) {
      // An extended partition without logical partitions has no EBR at all: nothing to say then.
      if (hop > 0) warnings.push(`the EBR at sector ${ebrSector} (extended partition ${extended.number}) has no 0x55AA signature: chain cut`);
      break;
    }
    const entries = parseMbrEntries(ebr);
    const ebrSpan = extEnd - ebrSector;
    for (const e of entries) {
      if (e.sectorCount === 0 || isExtendedType(e.type)) continue;
      const start = ebrSector + e.startLba;
      // Slots 3 and 4 of an EBR often hold garbage: Linux only trusts them when they fit the extended partition.
      if (e.slot >= 2 && (e.startLba + e.sectorCount > ebrSpan || start + e.sectorCount > extEnd)) continue;
      if (number > MAX_PARTITIONS) break;
      place(number, 'logical', e, start);
      number++;
    }
    const link = entries.find((e) => e.sectorCount !== 0 && isExtendedType(e.type));
    if (!link) break;
    ebrSector = extStart + link.startLba;
  }
  return number;
}
