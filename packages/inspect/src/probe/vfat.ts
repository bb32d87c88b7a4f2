/**
 * FAT12/16/32 ("vfat" to blkid). The boot sector's BIOS parameter block is
 * checked as libblkid checks it, the FAT type follows from the cluster count,
 * and the label comes from the volume-label entry of the root directory
 * (LABEL) and from the boot sector (LABEL_FATBOOT), as blkid reports them.
 */
import {
  ATTR,
  BOOT_SECTOR_SIZE,
  BPB,
  DIR_ENTRY_SIZE,
  DIRENT,
  EBPB16,
  EBPB32,
  FSINFO,
  KANJI_E5,
  DELETED_FLAG,
  FAT32_ENTRY_MASK,
  MAX_FAT12,
  MAX_FAT16,
  NO_NAME,
  blkidGeometry,
  formatSerial,
  parseBpb,
  type BlkidGeometry,
} from '../filesystems/fat/layout.ts';
import type { ProbeReader } from './reader.ts';
import type { ProbeResult } from './result.ts';
import { labelFrom } from './text.ts';

/** blkid follows at most this many clusters of the FAT32 root directory. */
const MAX_ROOT_CLUSTERS = 100;
/** "RRdA", a lead signature blkid accepts besides FSInfo's own "RRaA". */
const RRDA_SIG = 0x41645252;

/**
 * libblkid's fat_valid_superblock(). `weakMagic` is true when only the jump
 * byte or 0x55AA matched (no "FAT1x"/"MSWIN" string), which needs the
 * boot-sector signature and rules out OS/2 pseudo-superblocks. The geometry
 * rule itself is the layout table's (filesystems/fat/layout.ts).
 */
function fatGeometry(bs: Buffer, weakMagic: boolean): BlkidGeometry | undefined {
  if (weakMagic) {
    if (bs[BPB.signature] !== 0x55 || bs[BPB.signature + 1] !== 0xaa) return undefined;
    const magic = bs.toString('latin1', EBPB16.BS_FilSysType, EBPB16.BS_FilSysType + 8);
    if (magic === 'JFS     ' || magic === 'HPFS    ') return undefined;
  }
  return blkidGeometry(parseBpb(bs));
}

function matchMagic(bs: Buffer): 'strong' | 'weak' | undefined {
  const at52 = bs.toString('latin1', EBPB32.BS_FilSysType, EBPB32.BS_FilSysType + 8);
  const at36 = bs.toString('latin1', EBPB16.BS_FilSysType, EBPB16.BS_FilSysType + 8);
  if (at52.startsWith('MSWIN') || at52 === 'FAT32   ') return 'strong';
  if (at36.startsWith('MSDOS') || at36 === 'FAT16   ' || at36 === 'FAT12   ' || at36 === 'FAT     ') return 'strong';
  if (bs[BPB.BS_jmpBoot] === 0xeb || bs[BPB.BS_jmpBoot] === 0xe9 || (bs[BPB.signature] === 0x55 && bs[BPB.signature + 1] === 0xaa)) return 'weak';
  return undefined;
}

/** Whether a sector is a FAT boot sector by blkid's rules (used to tell a whole-disk FAT from an MBR). */
export function isFatBootSector(bs: Buffer): boolean {
  if (bs.length < BOOT_SECTOR_SIZE) return false;
  const magic = matchMagic(bs);
  if (!magic) return false;
  return fatGeometry(bs, magic === 'weak') !== undefined && !isBitLocker(bs);
}

/** BitLocker volumes carry a FAT-like boot sector; blkid rules them out. */
function isBitLocker(bs: Buffer): boolean {
  return bs.toString('latin1', BPB.BS_OEMName, BPB.BS_OEMName + 8) === '-FVE-FS-';
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
      const attr = ent[DIRENT.DIR_Attr];
      if (ent[0] === DELETED_FLAG || ent.readUInt16LE(DIRENT.DIR_FstClusHI) !== 0 || ent.readUInt16LE(DIRENT.DIR_FstClusLO) !== 0 || (attr & ATTR.LONG_NAME_MASK) === ATTR.LONG_NAME) continue;
      if ((attr & (ATTR.VOLUME_ID | ATTR.DIRECTORY)) === ATTR.VOLUME_ID) {
        const name = Buffer.from(ent.subarray(DIRENT.DIR_Name, DIRENT.DIR_Name + 11));
        // 0x05 stands for a name really starting with 0xE5 (which would mean "deleted").
        if (name[0] === KANJI_E5) name[0] = DELETED_FLAG;
        return name;
      }
    }
  }
  return undefined;
}

export async function probeVfat(r: ProbeReader): Promise<ProbeResult | undefined> {
  const bs = await r.read(0, BOOT_SECTOR_SIZE);
  if (!bs) return undefined;
  const magic = matchMagic(bs);
  if (!magic) return undefined;
  const g = fatGeometry(bs, magic === 'weak');
  if (!g || isBitLocker(bs)) return undefined;

  let volLabel: Buffer | undefined;
  let bootLabel: Buffer;
  let serial: number;
  let version: string | undefined;
  const result: ProbeResult = { type: 'vfat', usage: 'filesystem', blockSize: g.sectorSize };

  if (!g.fat32) {
    const rootStart = (g.reserved + g.fatSectors) * g.sectorSize;
    volLabel = await searchLabel(r, rootStart, bs.readUInt16LE(BPB.BPB_RootEntCnt));
    bootLabel = bs.subarray(EBPB16.BS_VolLab, EBPB16.BS_VolLab + 11);
    serial = bs.readUInt32LE(EBPB16.BS_VolID);
    result.secType = 'msdos';
    if (g.clusterCount < MAX_FAT12) version = 'FAT12';
    else if (g.clusterCount < MAX_FAT16) version = 'FAT16';
  } else {
    const clusterBytes = g.clusterSectors * g.sectorSize;
    const dataStart = g.reserved + g.fatSectors;
    const fatEntries = Math.floor((bs.readUInt32LE(EBPB32.BPB_FATSz32) * g.sectorSize) / 4);
    let next = bs.readUInt32LE(EBPB32.BPB_RootClus);
    for (let hops = 1; next && next < fatEntries && hops < MAX_ROOT_CLUSTERS; hops++) {
      const clusterOffset = (dataStart + (next - 2) * g.clusterSectors) * g.sectorSize;
      volLabel = await searchLabel(r, clusterOffset, clusterBytes / DIR_ENTRY_SIZE);
      if (volLabel) break;
      const fatEntry = await r.read(g.reserved * g.sectorSize + next * 4, 4);
      if (!fatEntry) break;
      next = fatEntry.readUInt32LE(0) & FAT32_ENTRY_MASK;
    }
    version = 'FAT32';
    bootLabel = bs.subarray(EBPB32.BS_VolLab, EBPB32.BS_VolLab + 11);
    serial = bs.readUInt32LE(EBPB32.BS_VolID);
    // FAT32 needs a valid FSInfo signature (or none at all: some formatters leave it zero).
    const fsinfoSector = bs.readUInt16LE(EBPB32.BPB_FSInfo);
    if (fsinfoSector) {
      const fsinfo = await r.read(fsinfoSector * g.sectorSize, BOOT_SECTOR_SIZE);
      if (!fsinfo) return undefined;
      // blkid also takes "RRdA" as a lead signature, and zeros for either.
      const sig1 = fsinfo.readUInt32LE(FSINFO.FSI_LeadSig);
      const sig2 = fsinfo.readUInt32LE(FSINFO.FSI_StrucSig);
      if (sig1 !== FSINFO.LEAD_SIG && sig1 !== RRDA_SIG && sig1 !== 0) return undefined;
      if (sig2 !== FSINFO.STRUC_SIG && sig2 !== 0) return undefined;
    }
  }

  if (bootLabel.toString('latin1') !== NO_NAME) result.labelFatboot = labelFrom(bootLabel, 'latin1');
  if (volLabel) result.label = labelFrom(volLabel, 'latin1');
  const uuid = formatSerial(serial);
  if (uuid) result.uuid = uuid;
  if (version) result.version = version;
  return result;
}
