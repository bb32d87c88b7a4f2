/**
 * GUID partition tables (UEFI spec, chapter 5): the primary header at LBA 1
 * with its entry array, and the backup header at the last LBA. A damaged
 * primary (header or entry-array CRC) falls back to the backup, with a
 * warning, as sgdisk and sfdisk do. Every size in a header is checked before
 * it is used, so a hostile header cannot make us allocate or read much.
 */
import { crc32 } from 'node:zlib';
import { toSafeNumber, type BlockSource } from '@guestlens/block';
import { PartitionTableError } from '../errors.ts';
import { formatGuid, isZeroGuid } from './guid.ts';
import type { Partition, PartitionTable } from './partition.ts';

const SIGNATURE = 'EFI PART';
const MIN_HEADER_SIZE = 92;
const MIN_ENTRY_SIZE = 128;
const MAX_ENTRY_SIZE = 4096;
/** 32 768 entries of 128 bytes: far above any real table (128 is usual), small enough to read at once. */
const MAX_ENTRY_ARRAY_BYTES = 4 * 1024 * 1024;

export interface GptHeader {
  lba: number;
  revision: number;
  headerSize: number;
  myLba: number;
  alternateLba: bigint;
  firstUsableLba: number;
  lastUsableLba: number;
  diskGuid: string;
  partitionEntryLba: number;
  numberOfPartitionEntries: number;
  sizeOfPartitionEntry: number;
  partitionEntryArrayCrc32: number;
}

type Attempt = { ok: true; header: GptHeader; entries: Buffer } | { ok: false; problem: string; header?: GptHeader };

export function hasGptSignature(buf: Buffer): boolean {
  return buf.length >= 8 && buf.toString('latin1', 0, 8) === SIGNATURE;
}

function checkedCrc(buf: Buffer, crcOffset: number, length: number): { stored: number; computed: number } {
  const copy = Buffer.from(buf.subarray(0, length));
  const stored = copy.readUInt32LE(crcOffset);
  copy.writeUInt32LE(0, crcOffset);
  return { stored, computed: crc32(copy) >>> 0 };
}

/** Parse and validate the header at `lba`; read and check its entry array. */
async function tryGpt(source: BlockSource, lba: number, sectorSize: number): Promise<Attempt> {
  const diskSectors = Math.floor(source.size / sectorSize);
  if (lba < 1 || lba >= diskSectors) return { ok: false, problem: `LBA ${lba} is outside the disk` };
  const buf = await source.read(lba * sectorSize, sectorSize);
  if (!hasGptSignature(buf)) return { ok: false, problem: 'no "EFI PART" signature' };
  const headerSize = buf.readUInt32LE(12);
  if (headerSize < MIN_HEADER_SIZE || headerSize > sectorSize) return { ok: false, problem: `header size ${headerSize} is not between ${MIN_HEADER_SIZE} and the sector size ${sectorSize}` };
  const { stored, computed } = checkedCrc(buf, 16, headerSize);
  if (stored !== computed) return { ok: false, problem: `header CRC32 mismatch (stored 0x${hex32(stored)}, computed 0x${hex32(computed)})` };

  const lbaField = (at: number, what: string): number => {
    const v = buf.readBigUInt64LE(at);
    if (v >= BigInt(diskSectors)) throw new GptProblem(`${what} ${v} is beyond the last LBA ${diskSectors - 1}`);
    return toSafeNumber(v, what);
  };
  let header: GptHeader;
  try {
    header = {
      lba,
      revision: buf.readUInt32LE(8),
      headerSize,
      myLba: lbaField(24, 'MyLBA'),
      alternateLba: buf.readBigUInt64LE(32),
      firstUsableLba: lbaField(40, 'FirstUsableLBA'),
      lastUsableLba: lbaField(48, 'LastUsableLBA'),
      diskGuid: formatGuid(buf.subarray(56, 72)),
      partitionEntryLba: lbaField(72, 'PartitionEntryLBA'),
      numberOfPartitionEntries: buf.readUInt32LE(80),
      sizeOfPartitionEntry: buf.readUInt32LE(84),
      partitionEntryArrayCrc32: buf.readUInt32LE(88),
    };
  } catch (err) {
    if (err instanceof GptProblem) return { ok: false, problem: err.message };
    throw err;
  }
  if (header.myLba !== lba) return { ok: false, problem: `MyLBA says ${header.myLba}, but the header was read at LBA ${lba}`, header };
  if (header.firstUsableLba > header.lastUsableLba + 1) {
    return { ok: false, problem: `FirstUsableLBA ${header.firstUsableLba} is after LastUsableLBA ${header.lastUsableLba}`, header };
  }
  const entrySize = header.sizeOfPartitionEntry;
  if (entrySize < MIN_ENTRY_SIZE || entrySize > MAX_ENTRY_SIZE || (entrySize & (entrySize - 1)) !== 0) {
    return { ok: false, problem: `SizeOfPartitionEntry ${entrySize} is not 128 x 2^n up to ${MAX_ENTRY_SIZE}`, header };
  }
  const arrayBytes = header.numberOfPartitionEntries * entrySize;
  if (arrayBytes > MAX_ENTRY_ARRAY_BYTES) {
    return { ok: false, problem: `${header.numberOfPartitionEntries} partition entries of ${entrySize} bytes (${arrayBytes} bytes) exceed the ${MAX_ENTRY_ARRAY_BYTES}-byte limit`, header };
  }
  const arrayOffset = header.partitionEntryLba * sectorSize;
  if (arrayOffset + arrayBytes > source.size) {
    return { ok: false, problem: `the partition entry array (${arrayBytes} bytes at LBA ${header.partitionEntryLba}) runs past the end of the disk`, header };
  }
  const entries = await source.read(arrayOffset, arrayBytes);
  const arrayCrc = crc32(entries) >>> 0;
  if (arrayCrc !== header.partitionEntryArrayCrc32) {
    return { ok: false, problem: `partition entry array CRC32 mismatch (stored 0x${hex32(header.partitionEntryArrayCrc32)}, computed 0x${hex32(arrayCrc)})`, header };
  }
  return { ok: true, header, entries };
}

class GptProblem extends Error {}

function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** Read a GPT with `sectorSize`-byte logical sectors: primary, else backup. */
export async function readGpt(source: BlockSource, sectorSize: number): Promise<PartitionTable> {
  const warnings: string[] = [];
  const diskSectors = Math.floor(source.size / sectorSize);
  const lastLba = diskSectors - 1;
  const primary = await tryGpt(source, 1, sectorSize);
  let chosen: Attempt = primary;

  if (primary.ok) {
    // After a disk image grew, the backup is still where the primary says, not at the end: not damage.
    const alt = primary.header.alternateLba;
    const backupLba = alt > 1n && alt <= BigInt(lastLba) ? Number(alt) : lastLba;
    const backup = await tryGpt(source, backupLba, sectorSize);
    if (!backup.ok) warnings.push(`the backup GPT at LBA ${backupLba} is damaged (${backup.problem}); the primary GPT is intact and used`);
  } else {
    const candidates = [lastLba];
    if (primary.header && primary.header.alternateLba > 1n && primary.header.alternateLba < BigInt(lastLba)) {
      candidates.unshift(Number(primary.header.alternateLba));
    }
    let backup: Attempt | undefined;
    for (const lba of candidates) {
      backup = await tryGpt(source, lba, sectorSize);
      if (backup.ok) break;
    }
    if (!backup || !backup.ok) {
      throw new PartitionTableError(
        source.name,
        sectorSize,
        `the primary GPT (LBA 1) is damaged (${primary.problem}) and so is the backup at LBA ${candidates.join(' or ')} (${backup?.ok === false ? backup.problem : 'not found'}); ` +
          'the partitions cannot be found (sgdisk or testdisk may be able to repair a copy of the disk)',
      );
    }
    warnings.push(`the primary GPT (LBA 1) is damaged (${primary.problem}); using the backup GPT at LBA ${backup.header.lba}`);
    chosen = backup;
  }
  if (!chosen.ok) throw new Error('unreachable');
  return {
    scheme: 'gpt',
    sectorSize,
    diskId: chosen.header.diskGuid,
    partitions: parseEntries(chosen.header, chosen.entries, sectorSize, diskSectors, warnings),
    warnings,
  };
}

function parseEntries(header: GptHeader, entries: Buffer, sectorSize: number, diskSectors: number, warnings: string[]): Partition[] {
  const partitions: Partition[] = [];
  for (let i = 0; i < header.numberOfPartitionEntries; i++) {
    const e = entries.subarray(i * header.sizeOfPartitionEntry, (i + 1) * header.sizeOfPartitionEntry);
    const typeBytes = e.subarray(0, 16);
    if (isZeroGuid(typeBytes)) continue;
    const number = i + 1;
    const first = e.readBigUInt64LE(32);
    const last = e.readBigUInt64LE(40);
    if (first > last) {
      warnings.push(`GPT entry ${number}: StartingLBA ${first} is after EndingLBA ${last}: ignored`);
      continue;
    }
    if (last >= BigInt(diskSectors)) {
      warnings.push(`GPT entry ${number}: sectors ${first}..${last} run past the end of the disk (${diskSectors} sectors of ${sectorSize} bytes): ignored`);
      continue;
    }
    if (first < BigInt(header.firstUsableLba) || last > BigInt(header.lastUsableLba)) {
      warnings.push(`GPT entry ${number}: sectors ${first}..${last} lie outside the usable LBAs ${header.firstUsableLba}..${header.lastUsableLba}`);
    }
    const startSector = Number(first);
    const sectorCount = Number(last - first) + 1;
    partitions.push({
      number,
      kind: 'gpt',
      startSector,
      sectorCount,
      offset: startSector * sectorSize,
      size: sectorCount * sectorSize,
      typeGuid: formatGuid(typeBytes),
      uuid: formatGuid(e.subarray(16, 32)),
      name: decodeName(e.subarray(56, 128)),
      attributes: e.readBigUInt64LE(48).toString(16).padStart(16, '0'),
    });
  }
  return partitions;
}

/** PartitionName: up to 36 UTF-16LE code units, ended by the first NUL. */
function decodeName(raw: Buffer): string {
  let end = 0;
  while (end + 1 < raw.length && (raw[end] !== 0 || raw[end + 1] !== 0)) end += 2;
  return raw.toString('utf16le', 0, end);
}
