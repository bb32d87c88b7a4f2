/**
 * The LVM2 on-disk layout both the probe (probe/lvm2.ts) and the volume
 * reader use: the label in one of the first four sectors, the PV header it
 * points to, the metadata area header with its raw locations, and the
 * limits guestlens puts on what a (possibly hostile) PV may claim. Field
 * names are those of LVM2's lib/label/label.h and lib/format_text/layout.h.
 *
 * LVM counts in 512-byte sectors whatever the device's logical sector size
 * (pe_start, extent_size, stripe_size, chunk_size are all in these units).
 */
import { crc32 } from 'node:zlib';

/** LVM's unit for every sector count in labels and metadata. */
export const SECTOR_SIZE = 512;

export const LABEL_SIZE = SECTOR_SIZE;
/** The label may be in any of the first four sectors (LVM writes sector 1). */
export const LABEL_SCAN_SECTORS = 4;
export const LABEL_ID = 'LABELONE';
export const LVM2_LABEL_TYPE = 'LVM2 001';

/** struct label_header. */
export const LABEL = {
  id: 0, // char[8] "LABELONE"
  sector_xl: 8, // u64: the sector this label is in
  crc_xl: 16, // u32: CRC of bytes 20..512
  offset_xl: 20, // u32: offset of the PV header from the label's start
  type: 24, // char[8] "LVM2 001"
  /** The CRC covers the label from here to the end of the sector. */
  crcFrom: 20,
  headerSize: 32,
} as const;

/** struct pv_header, at the label + offset_xl. */
export const PV_HEADER = {
  pv_uuid: 0, // char[32]
  device_size_xl: 32, // u64, bytes
  /** Two zero-terminated lists of struct disk_locn {offset u64, size u64}: data areas, then metadata areas. */
  disk_areas_xl: 40,
  diskLocnSize: 16,
} as const;

export const PV_UUID_LENGTH = 32;
/** PV and VG UUIDs print as 6-4-4-4-4-4-6 characters. */
export const UUID_GROUPS = [6, 4, 4, 4, 4, 4, 6] as const;

/** struct mda_header, at the start of each metadata area. */
export const MDA_HEADER = {
  checksum_xl: 0, // u32: CRC of bytes 4..512
  magic: 4, // 16 bytes FMTT_MAGIC
  version: 20, // u32, FMTT_VERSION
  start: 24, // u64: absolute byte offset of this header on the PV
  size: 32, // u64: size of the metadata area, header included
  raw_locns: 40, // struct raw_locn[]: {offset u64, size u64, checksum u32, flags u32}
  rawLocnSize: 24,
  crcFrom: 4,
} as const;

export const MDA_HEADER_SIZE = 512;
/** " LVM2 x[5A%r0N*>" */
export const FMTT_MAGIC = Buffer.from([0x20, 0x4c, 0x56, 0x4d, 0x32, 0x20, 0x78, 0x5b, 0x35, 0x41, 0x25, 0x72, 0x30, 0x4e, 0x2a, 0x3e]);
export const FMTT_VERSION = 1;
/** raw_locn.flags: this metadata area is kept but not used (vgchange --metadatacopies). */
export const RAW_LOCN_IGNORED = 0x1;
/** raw_locns[0] holds the committed metadata; [1] a precommitted one (not yet in force). */
export const COMMITTED_SLOT = 0;

/** CRC-32 (zlib polynomial) seeded with this value and without the final inversion: calc_crc() of lib/misc/crc.c. */
export const LVM_INITIAL_CRC = 0xf597a6cf;

/** calc_crc() by way of zlib's crc32 (which inverts on the way in and out); `initial` continues a running CRC. */
export function lvmCrc(data: Uint8Array, initial = LVM_INITIAL_CRC): number {
  return ~crc32(data, ~initial >>> 0) >>> 0;
}

/** Bounds guestlens puts on what a PV may claim (a hostile image's numbers never size an allocation). */
export const LIMITS = {
  /** Entries in each disk_locn list of a PV header (LVM writes one data area and at most two metadata areas). */
  diskAreas: 8,
  /**
   * Largest VG text guestlens reads. LVM's default area is 1 MiB and a copy
   * must fit twice in an area; a VG with thousands of LVs stays well below.
   */
  metadataText: 16 * 1024 * 1024,
  /** Nesting of sections and arrays in the text (LVM's own nests 5 deep). */
  textDepth: 32,
  /** Nodes (sections, values, array items) in one text: bounds the parse's memory. */
  textNodes: 1_000_000,
  /** Length of one string or identifier token. */
  tokenLength: 64 * 1024,
  /** Physical volumes, logical volumes and segments per LV in one VG. */
  physicalVolumes: 4096,
  logicalVolumes: 65536,
  segmentsPerVolume: 65536,
  /** Areas (stripes, mirror legs, raid images) in one segment. */
  areasPerSegment: 256,
  /** Layers of LVs on LVs (a raid1 image on a linear LV is 2). */
  stackDepth: 16,
} as const;

/** VG and LV names: LVM's validate_name() characters (no leading hyphen, not "." or ".."), and its length limit (NAME_LEN - 1). */
export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= 127 && /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/.test(name) && name !== '.' && name !== '..';
}
