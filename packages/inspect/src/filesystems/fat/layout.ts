/**
 * The FAT12/16/32 on-disk layout both the probe (probe/vfat.ts) and the
 * driver read: the offsets of the boot sector's BIOS parameter block (BPB)
 * and of its FAT12/16 and FAT32 extensions, the FSInfo sector, directory
 * entries and long-name slots, and the one parser of the BPB's raw fields.
 * Field names are Microsoft's FAT specification's (BPB_BytsPerSec, ...).
 *
 * Two rules derive the volume's geometry from those fields and they differ on
 * damaged input, so both live here beside the parser: libblkid's
 * (`blkidGeometry`, which decides whether blkid calls the device vfat) and
 * the Linux kernel's (`kernelGeometry`, which decides whether it mounts and
 * how many clusters statfs reports). Nothing else in guestlens computes a
 * FAT cluster count.
 */

/** blkid and the kernel name FAT12/16/32 "vfat"; "msdos" is blkid's SEC_TYPE for FAT12/16. */
export const FAT_TYPES = ['vfat', 'msdos'] as const;

export const BOOT_SECTOR_SIZE = 512;

/** Byte offsets in the boot sector. */
export const BPB = {
  BS_jmpBoot: 0x00,
  BS_OEMName: 0x03,
  BPB_BytsPerSec: 0x0b,
  BPB_SecPerClus: 0x0d,
  BPB_RsvdSecCnt: 0x0e,
  BPB_NumFATs: 0x10,
  BPB_RootEntCnt: 0x11,
  BPB_TotSec16: 0x13,
  BPB_Media: 0x15,
  BPB_FATSz16: 0x16,
  BPB_SecPerTrk: 0x18,
  BPB_NumHeads: 0x1a,
  BPB_HiddSec: 0x1c,
  BPB_TotSec32: 0x20,
  /** 0x55 0xAA at 510. */
  signature: 0x1fe,
} as const;

/** The FAT12/16 extended BPB. */
export const EBPB16 = {
  BS_DrvNum: 0x24,
  /** Linux keeps its dirty bit here ("state"). */
  BS_Reserved1: 0x25,
  BS_BootSig: 0x26,
  BS_VolID: 0x27,
  BS_VolLab: 0x2b,
  BS_FilSysType: 0x36,
} as const;

/** The FAT32 extended BPB. */
export const EBPB32 = {
  BPB_FATSz32: 0x24,
  BPB_ExtFlags: 0x28,
  BPB_FSVer: 0x2a,
  BPB_RootClus: 0x2c,
  BPB_FSInfo: 0x30,
  BPB_BkBootSec: 0x32,
  BS_DrvNum: 0x40,
  BS_Reserved1: 0x41,
  BS_BootSig: 0x42,
  BS_VolID: 0x43,
  BS_VolLab: 0x47,
  BS_FilSysType: 0x52,
} as const;

/** FSInfo sector (FAT32). */
export const FSINFO = {
  FSI_LeadSig: 0,
  FSI_StrucSig: 484,
  FSI_Free_Count: 488,
  FSI_Nxt_Free: 492,
  FSI_TrailSig: 508,
  LEAD_SIG: 0x41615252, // "RRaA"
  STRUC_SIG: 0x61417272, // "rrAa"
} as const;

/** A 32-byte directory entry. */
export const DIR_ENTRY_SIZE = 32;
export const DIRENT = {
  DIR_Name: 0,
  DIR_Attr: 11,
  /** Windows NT's case bits (Linux: lcase). */
  DIR_NTRes: 12,
  /** Hundredths of a second of the creation time (0..199). */
  DIR_CrtTimeTenth: 13,
  DIR_CrtTime: 14,
  DIR_CrtDate: 16,
  DIR_LstAccDate: 18,
  DIR_FstClusHI: 20,
  DIR_WrtTime: 22,
  DIR_WrtDate: 24,
  DIR_FstClusLO: 26,
  DIR_FileSize: 28,
} as const;

/** A long-file-name slot, in the same 32 bytes. */
export const LDIR = {
  LDIR_Ord: 0,
  LDIR_Name1: 1, // 5 UTF-16 units
  LDIR_Attr: 11,
  LDIR_Type: 12,
  LDIR_Chksum: 13,
  LDIR_Name2: 14, // 6 units
  LDIR_FstClusLO: 26,
  LDIR_Name3: 28, // 2 units
  /** Set in the ordinal of the last slot of a name (the first one stored). */
  LAST_LONG_ENTRY: 0x40,
  CHARS_PER_SLOT: 13,
  /** ceil(255 * 2 / 26): more slots than this is not a long name (the kernel's rule). */
  MAX_SLOTS: 20,
} as const;

export const ATTR = {
  READ_ONLY: 0x01,
  HIDDEN: 0x02,
  SYSTEM: 0x04,
  VOLUME_ID: 0x08,
  DIRECTORY: 0x10,
  ARCHIVE: 0x20,
  LONG_NAME: 0x0f,
  /** The bits a long-name test looks at (blkid masks with these). */
  LONG_NAME_MASK: 0x3f,
} as const;

/** DIR_NTRes bits: show the base name / the extension of an 8.3 name in lower case. */
export const NTRES = { LOWER_BASE: 0x08, LOWER_EXT: 0x10 } as const;

/** DIR_Name[0]: a free (deleted) entry; 0x05 stands for a name really starting with 0xE5. */
export const DELETED_FLAG = 0xe5;
export const KANJI_E5 = 0x05;
/** The 11-byte names of "." and "..". */
export const DOT_NAME = Buffer.from('.          ', 'latin1');
export const DOTDOT_NAME = Buffer.from('..         ', 'latin1');
/** A volume label field that holds no label. */
export const NO_NAME = 'NO NAME    ';

/** The largest cluster numbers of each FAT size (the kernel's MAX_FAT12/16/32; blkid uses the same values). */
export const MAX_FAT12 = 0xff4;
export const MAX_FAT16 = 0xfff4;
export const MAX_FAT32 = 0x0ffffff6;
/** First data cluster number. */
export const FAT_START_ENT = 2;
/** Entries at or above these are end-of-chain (bad-cluster marks included: the kernel treats them as the end). */
export const BAD_FAT12 = 0xff7;
export const BAD_FAT16 = 0xfff7;
export const BAD_FAT32 = 0x0ffffff7;
/** FAT32 entries keep 28 bits; the top four are reserved. */
export const FAT32_ENTRY_MASK = 0x0fffffff;
/** BS_Reserved1 bit Linux sets while mounted read-write. */
export const FAT_STATE_DIRTY = 0x01;

export type FatBits = 12 | 16 | 32;

/** The BPB's raw fields, as read; nothing validated. */
export interface BiosParameterBlock {
  BPB_BytsPerSec: number;
  BPB_SecPerClus: number;
  BPB_RsvdSecCnt: number;
  BPB_NumFATs: number;
  BPB_RootEntCnt: number;
  BPB_TotSec16: number;
  BPB_Media: number;
  BPB_FATSz16: number;
  BPB_TotSec32: number;
  BPB_FATSz32: number;
  BPB_ExtFlags: number;
  BPB_RootClus: number;
  BPB_FSInfo: number;
  BPB_BkBootSec: number;
  /** BPB_FATSz16 == 0 and BPB_FATSz32 != 0: the FAT32 layout (the rule of both blkid and the kernel). */
  fat32: boolean;
  /** BS_VolID of the extension that applies. */
  BS_VolID: number;
  BS_VolLab: Buffer;
  BS_FilSysType: Buffer;
  /** Linux's dirty bit (BS_Reserved1 of the extension that applies). */
  state: number;
}

export function parseBpb(bs: Buffer): BiosParameterBlock {
  const fatSz16 = bs.readUInt16LE(BPB.BPB_FATSz16);
  const fatSz32 = bs.readUInt32LE(EBPB32.BPB_FATSz32);
  const fat32 = fatSz16 === 0 && fatSz32 !== 0;
  const ext = fat32 ? EBPB32 : EBPB16;
  return {
    BPB_BytsPerSec: bs.readUInt16LE(BPB.BPB_BytsPerSec),
    BPB_SecPerClus: bs[BPB.BPB_SecPerClus],
    BPB_RsvdSecCnt: bs.readUInt16LE(BPB.BPB_RsvdSecCnt),
    BPB_NumFATs: bs[BPB.BPB_NumFATs],
    BPB_RootEntCnt: bs.readUInt16LE(BPB.BPB_RootEntCnt),
    BPB_TotSec16: bs.readUInt16LE(BPB.BPB_TotSec16),
    BPB_Media: bs[BPB.BPB_Media],
    BPB_FATSz16: fatSz16,
    BPB_TotSec32: bs.readUInt32LE(BPB.BPB_TotSec32),
    BPB_FATSz32: fatSz32,
    BPB_ExtFlags: bs.readUInt16LE(EBPB32.BPB_ExtFlags),
    BPB_RootClus: bs.readUInt32LE(EBPB32.BPB_RootClus),
    BPB_FSInfo: bs.readUInt16LE(EBPB32.BPB_FSInfo),
    BPB_BkBootSec: bs.readUInt16LE(EBPB32.BPB_BkBootSec),
    fat32,
    BS_VolID: bs.readUInt32LE(ext.BS_VolID),
    BS_VolLab: Buffer.from(bs.subarray(ext.BS_VolLab, ext.BS_VolLab + 11)),
    BS_FilSysType: Buffer.from(bs.subarray(ext.BS_FilSysType, ext.BS_FilSysType + 8)),
    state: bs[ext.BS_Reserved1],
  };
}

/** Total sectors: the 16-bit field, or the 32-bit one when that is 0. */
export function totalSectors(bpb: BiosParameterBlock): number {
  return bpb.BPB_TotSec16 || bpb.BPB_TotSec32;
}

export function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** Media descriptors both blkid and the kernel accept. */
export function validMedia(media: number): boolean {
  return media >= 0xf8 || media === 0xf0;
}

/** The volume serial as blkid and the kernel format it, "XXXX-XXXX"; undefined for 0 (blkid prints none). */
export function formatSerial(volId: number): string | undefined {
  if (volId === 0) return undefined;
  const hex = (volId >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return `${hex.slice(0, 4)}-${hex.slice(4)}`;
}

/** What libblkid works out from a BPB it accepts. */
export interface BlkidGeometry {
  sectorSize: number;
  clusterSectors: number;
  reserved: number;
  /** All FATs together, in sectors. */
  fatSectors: number;
  clusterCount: number;
  fat32: boolean;
}

/**
 * libblkid's fat_valid_superblock() on the raw fields: undefined when blkid
 * would not call this a FAT. blkid computes in 32-bit unsigned arithmetic
 * (an underflow becomes a huge count and fails the final check) and rounds
 * the root directory up to whole sectors.
 */
export function blkidGeometry(bpb: BiosParameterBlock): BlkidGeometry | undefined {
  const { BPB_NumFATs: fats, BPB_RsvdSecCnt: reserved, BPB_SecPerClus: clusterSectors, BPB_BytsPerSec: sectorSize } = bpb;
  if (!fats || !reserved) return undefined;
  if (!validMedia(bpb.BPB_Media)) return undefined;
  if (!isPowerOfTwo(clusterSectors)) return undefined;
  if (!isPowerOfTwo(sectorSize) || sectorSize < 512 || sectorSize > 4096) return undefined;
  const fatLength = bpb.BPB_FATSz16 || bpb.BPB_FATSz32;
  const fatSectors = Math.imul(fatLength, fats) >>> 0;
  const dirSectors = Math.floor((bpb.BPB_RootEntCnt * DIR_ENTRY_SIZE + sectorSize - 1) / sectorSize);
  const clusterCount = Math.floor(((totalSectors(bpb) - (reserved + fatSectors + dirSectors)) >>> 0) / clusterSectors);
  const maxCount = bpb.fat32 ? MAX_FAT32 : clusterCount > MAX_FAT12 ? MAX_FAT16 : MAX_FAT12;
  if (clusterCount > maxCount) return undefined;
  return { sectorSize, clusterSectors, reserved, fatSectors, clusterCount, fat32: bpb.fat32 };
}

/** The kernel's view of a volume it mounts (fs/fat/inode.c fat_fill_super), in sectors unless said otherwise. */
export interface KernelGeometry {
  sectorSize: number;
  sectorsPerCluster: number;
  clusterSize: number;
  fatBits: FatBits;
  /** First sector of the first FAT (BPB_RsvdSecCnt). */
  fatStart: number;
  /** Sectors of one FAT. */
  fatLength: number;
  fats: number;
  /** First sector after the FATs: the fixed root directory on FAT12/16. */
  dirStart: number;
  /** Entries of the fixed root directory (0 on FAT32). */
  dirEntries: number;
  /** First sector of cluster 2. */
  dataStart: number;
  /** Data clusters: min(what the sectors hold, what one FAT can describe). statfs's f_blocks. */
  totalClusters: number;
  /** totalClusters + 2: cluster numbers are valid below this. */
  maxCluster: number;
  /** FAT32's root directory cluster (0 on FAT12/16). */
  rootCluster: number;
  /** FAT32's FSInfo sector (1 when the BPB says 0, as the kernel reads it). */
  fsinfoSector: number;
  totalSectors: number;
}

/** Why the kernel refuses to mount, worded as its messages are. */
export type KernelGeometryResult = { ok: true; geometry: KernelGeometry } | { ok: false; reason: string; field: keyof typeof BPB | keyof typeof EBPB32 };

const U64 = 1n << 64n;
const U32 = 1n << 32n;

/**
 * fat_read_bpb() and the geometry part of fat_fill_super(): the checks the
 * kernel makes before it mounts, and the cluster count it then uses. The
 * count is computed as the kernel computes it: (total_sectors - data_start)
 * in 64-bit unsigned arithmetic, divided, truncated to 32 bits, then capped
 * by the entries one FAT can hold.
 */
export function kernelGeometry(bpb: BiosParameterBlock): KernelGeometryResult {
  if (!bpb.BPB_RsvdSecCnt) return { ok: false, reason: 'bogus number of reserved sectors (0)', field: 'BPB_RsvdSecCnt' };
  if (!bpb.BPB_NumFATs) return { ok: false, reason: 'bogus number of FAT structures (0)', field: 'BPB_NumFATs' };
  if (!validMedia(bpb.BPB_Media)) return { ok: false, reason: `invalid media value (0x${bpb.BPB_Media.toString(16).padStart(2, '0')})`, field: 'BPB_Media' };
  const sectorSize = bpb.BPB_BytsPerSec;
  if (!isPowerOfTwo(sectorSize) || sectorSize < 512 || sectorSize > 4096) return { ok: false, reason: `bogus logical sector size ${sectorSize}`, field: 'BPB_BytsPerSec' };
  const spc = bpb.BPB_SecPerClus;
  if (!isPowerOfTwo(spc)) return { ok: false, reason: `bogus sectors per cluster ${spc}`, field: 'BPB_SecPerClus' };
  if (bpb.BPB_FATSz16 === 0 && bpb.BPB_FATSz32 === 0) return { ok: false, reason: 'bogus number of FAT sectors (0)', field: 'BPB_FATSz16' };

  const fat32 = bpb.fat32;
  const fatLength = fat32 ? bpb.BPB_FATSz32 : bpb.BPB_FATSz16;
  const fatStart = bpb.BPB_RsvdSecCnt;
  const dirStart = fatStart + bpb.BPB_NumFATs * fatLength;
  const dirPerBlock = sectorSize / DIR_ENTRY_SIZE;
  const dirEntries = bpb.BPB_RootEntCnt;
  if (dirEntries & (dirPerBlock - 1)) return { ok: false, reason: `bogus number of directory entries (${dirEntries})`, field: 'BPB_RootEntCnt' };
  const dataStart = dirStart + (dirEntries * DIR_ENTRY_SIZE) / sectorSize;
  const total = totalSectors(bpb);
  let clusters = Number(((((BigInt(total) - BigInt(dataStart)) % U64) + U64) % U64 / BigInt(spc)) % U32);
  const fatBits: FatBits = fat32 ? 32 : clusters > MAX_FAT12 ? 16 : 12;
  // calc_fat_clusters: the entries one FAT's sectors can hold.
  const fatClusters = fatBits === 12 ? Math.floor((fatLength * sectorSize * 8) / 12) : Math.floor((sectorSize * 8) / fatBits) * fatLength;
  clusters = Math.min(clusters, fatClusters - FAT_START_ENT);
  const maxFat = fatBits === 32 ? MAX_FAT32 : fatBits === 16 ? MAX_FAT16 : MAX_FAT12;
  if (clusters > maxFat) return { ok: false, reason: `count of clusters too big (${clusters})`, field: fat32 ? 'BPB_FATSz32' : 'BPB_TotSec16' };
  return {
    ok: true,
    geometry: {
      sectorSize,
      sectorsPerCluster: spc,
      clusterSize: sectorSize * spc,
      fatBits,
      fatStart,
      fatLength,
      fats: bpb.BPB_NumFATs,
      dirStart,
      dirEntries,
      dataStart,
      totalClusters: clusters,
      maxCluster: clusters + FAT_START_ENT,
      rootCluster: fat32 ? bpb.BPB_RootClus : 0,
      fsinfoSector: fat32 ? bpb.BPB_FSInfo || 1 : 0,
      totalSectors: total,
    },
  };
}
