/**
 * FAT12/16/32 ("vfat" to blkid). The boot sector's BIOS parameter block is
 * checked as libblkid checks it, the FAT type follows from the cluster count,
 * and the label comes from the volume-label entry of the root directory
 * (LABEL) and from the boot sector (LABEL_FATBOOT), as blkid reports them.
 */
import type { ProbeReader } from './reader.ts';
import type { ProbeResult } from './result.ts';
import { isPowerOfTwo, labelFrom } from './text.ts';

const FAT12_MAX = 0xff4;
const FAT16_MAX = 0xfff4;
const FAT32_MAX = 0x0ffffff6;
const DIR_ENTRY_SIZE = 32;
const ATTR_VOLUME_ID = 0x08;
const ATTR_DIR = 0x10;
const ATTR_LONG_NAME = 0x0f;
const ATTR_MASK = 0x3f;
const NO_NAME = 'NO NAME    ';
/** blkid follows at most this many clusters of the FAT32 root directory. */
const MAX_ROOT_CLUSTERS = 100;

interface Geometry {
  sectorSize: number;
  clusterSectors: number;
  reserved: number;
  fatSectors: number;
  clusterCount: number;
  fat32: boolean;
}

/**
 * libblkid's fat_valid_superblock(). `weakMagic` is true when only the jump
 * byte or 0x55AA matched (no "FAT1x"/"MSWIN" string), which needs the
 * boot-sector signature and rules out OS/2 pseudo-superblocks.
 */
function fatGeometry(bs: Buffer, weakMagic: boolean): Geometry | undefined {
  if (weakMagic) {
    if (bs[510] !== 0x55 || bs[511] !== 0xaa) return undefined;
    const magic = bs.toString('latin1', 0x36, 0x3e);
    if (magic === 'JFS     ' || magic === 'HPFS    ') return undefined;
  }
  const fats = bs[0x10];
  const reserved = bs.readUInt16LE(0x0e);
  const media = bs[0x15];
  const clusterSectors = bs[0x0d];
  if (!fats || !reserved) return undefined;
  if (!(media >= 0xf8 || media === 0xf0)) return undefined;
  if (!isPowerOfTwo(clusterSectors)) return undefined;
  const sectorSize = bs.readUInt16LE(0x0b);
  if (!isPowerOfTwo(sectorSize) || sectorSize < 512 || sectorSize > 4096) return undefined;
  const dirEntries = bs.readUInt16LE(0x11);
  let sectors = bs.readUInt16LE(0x13);
  if (sectors === 0) sectors = bs.readUInt32LE(0x20);
  const fat16Length = bs.readUInt16LE(0x16);
  const fat32Length = bs.readUInt32LE(0x24);
  const fatLength = fat16Length || fat32Length;
  // blkid computes these in 32-bit unsigned arithmetic; an underflow becomes a huge count and fails the check below.
  const fatSectors = Math.imul(fatLength, fats) >>> 0;
  const dirSectors = Math.floor((dirEntries * DIR_ENTRY_SIZE + sectorSize - 1) / sectorSize);
  const clusterCount = Math.floor(((sectors - (reserved + fatSectors + dirSectors)) >>> 0) / clusterSectors);
  const fat32 = !fat16Length && fat32Length !== 0;
  const maxCount = fat32 ? FAT32_MAX : clusterCount > FAT12_MAX ? FAT16_MAX : FAT12_MAX;
  if (clusterCount > maxCount) return undefined;
  return { sectorSize, clusterSectors, reserved, fatSectors, clusterCount, fat32 };
}

function matchMagic(bs: Buffer): 'strong' | 'weak' | undefined {
  const at52 = bs.toString('latin1', 0x52, 0x5a);
  const at36 = bs.toString('latin1', 0x36, 0x3e);
  if (at52.startsWith('MSWIN') || at52 === 'FAT32   ') return 'strong';
  if (at36.startsWith('MSDOS') || at36 === 'FAT16   ' || at36 === 'FAT12   ' || at36 === 'FAT     ') return 'strong';
  if (bs[0] === 0xeb || bs[0] === 0xe9 || (bs[510] === 0x55 && bs[511] === 0xaa)) return 'weak';
  return undefined;
}

/** Whether a sector is a FAT boot sector by blkid's rules (used to tell a whole-disk FAT from an MBR). */
export function isFatBootSector(bs: Buffer): boolean {
  if (bs.length < 512) return false;
  const magic = matchMagic(bs);
  if (!magic) return false;
  return fatGeometry(bs, magic === 'weak') !== undefined && !isBitLocker(bs);
}

/** BitLocker volumes carry a FAT-like boot sector; blkid rules them out. */
function isBitLocker(bs: Buffer): boolean {
  return bs.toString('latin1', 3, 11) === '-FVE-FS-';
}

/** The first volume-label entry among `entries` directory entries at `offset`, as blkid's search_fat_label finds it. */
async function searchLabel(r: ProbeReader, offset: number, entries: number): Promise<Buffer | undefined> {
  const perChunk = 2048;
  for (let first = 0; first < entries; first += perChunk) {
    const count = Math.min(perChunk, entries - first);
    const dir = await r.read(offset + first * DIR_ENTRY_SIZE, count * DIR_ENTRY_SIZE);
    if (!dir) return undefined;
    for (let i = 0; i < count; i++) {
      const ent = dir.subarray(i * DIR_ENTRY_SIZE, (i + 1) * DIR_ENTRY_SIZE);
      if (ent[0] === 0x00) return undefined;
      const attr = ent[11];
      if (ent[0] === 0xe5 || ent.readUInt16LE(20) !== 0 || ent.readUInt16LE(26) !== 0 || (attr & ATTR_MASK) === ATTR_LONG_NAME) continue;
      if ((attr & (ATTR_VOLUME_ID | ATTR_DIR)) === ATTR_VOLUME_ID) {
        const name = Buffer.from(ent.subarray(0, 11));
        // 0x05 stands for a name really starting with 0xE5 (which would mean "deleted").
        if (name[0] === 0x05) name[0] = 0xe5;
        return name;
      }
    }
  }
  return undefined;
}

export async function probeVfat(r: ProbeReader): Promise<ProbeResult | undefined> {
  const bs = await r.read(0, 512);
  if (!bs) return undefined;
  const magic = matchMagic(bs);
  if (!magic) return undefined;
  const g = fatGeometry(bs, magic === 'weak');
  if (!g || isBitLocker(bs)) return undefined;

  let volLabel: Buffer | undefined;
  let bootLabel: Buffer;
  let serial: Buffer;
  let version: string | undefined;
  const result: ProbeResult = { type: 'vfat', usage: 'filesystem', blockSize: g.sectorSize };

  if (!g.fat32) {
    const rootStart = (g.reserved + g.fatSectors) * g.sectorSize;
    volLabel = await searchLabel(r, rootStart, bs.readUInt16LE(0x11));
    bootLabel = bs.subarray(0x2b, 0x36);
    serial = bs.subarray(0x27, 0x2b);
    result.secType = 'msdos';
    if (g.clusterCount < FAT12_MAX) version = 'FAT12';
    else if (g.clusterCount < FAT16_MAX) version = 'FAT16';
  } else {
    const clusterBytes = g.clusterSectors * g.sectorSize;
    const dataStart = g.reserved + g.fatSectors;
    const fatEntries = Math.floor((bs.readUInt32LE(0x24) * g.sectorSize) / 4);
    let next = bs.readUInt32LE(0x2c);
    for (let hops = 1; next && next < fatEntries && hops < MAX_ROOT_CLUSTERS; hops++) {
      const clusterOffset = (dataStart + (next - 2) * g.clusterSectors) * g.sectorSize;
      volLabel = await searchLabel(r, clusterOffset, clusterBytes / DIR_ENTRY_SIZE);
      if (volLabel) break;
      const fatEntry = await r.read(g.reserved * g.sectorSize + next * 4, 4);
      if (!fatEntry) break;
      next = fatEntry.readUInt32LE(0) & 0x0fffffff;
    }
    version = 'FAT32';
    bootLabel = bs.subarray(0x47, 0x52);
    serial = bs.subarray(0x43, 0x47);
    // FAT32 needs a valid FSInfo signature (or none at all: some formatters leave it zero).
    const fsinfoSector = bs.readUInt16LE(0x30);
    if (fsinfoSector) {
      const fsinfo = await r.read(fsinfoSector * g.sectorSize, 512);
      if (!fsinfo) return undefined;
      const sig1 = fsinfo.toString('latin1', 0, 4);
      const sig2 = fsinfo.toString('latin1', 484, 488);
      if (sig1 !== 'RRaA' && sig1 !== 'RRdA' && sig1 !== '\0\0\0\0') return undefined;
      if (sig2 !== 'rrAa' && sig2 !== '\0\0\0\0') return undefined;
    }
  }

  if (bootLabel.toString('latin1') !== NO_NAME) result.labelFatboot = labelFrom(bootLabel, 'latin1');
  if (volLabel) result.label = labelFrom(volLabel, 'latin1');
  if (serial.some((b) => b !== 0)) {
    const hex = Buffer.from(serial).reverse().toString('hex').toUpperCase();
    result.uuid = `${hex.slice(0, 4)}-${hex.slice(4)}`;
  }
  if (version) result.version = version;
  return result;
}
