/**
 * Block group descriptors: where each group's bitmaps and inode table live and
 * its free counts. 32-byte descriptors, or s_desc_size (>= 64) with
 * INCOMPAT_64BIT, whose second half carries the `_hi` words. Checksums: the
 * metadata_csum crc32c (low 16 bits) or the older crc16 of uninit_bg/gdt_csum.
 */
import { crc16, crc32c, crc32cLe32 } from './checksum.ts';
import { ExtCorruptError } from './errors.ts';
import {
  INCOMPAT,
  RO_COMPAT,
  SUPERBLOCK_OFFSET,
  groupFirstBlock,
  groupHasSuper,
  hasIncompat,
  hasRoCompat,
  type Superblock,
} from './superblock.ts';

export interface GroupDescriptor {
  bg_block_bitmap: number;
  bg_inode_bitmap: number;
  bg_inode_table: number;
  bg_free_blocks_count: number;
  bg_free_inodes_count: number;
  bg_used_dirs_count: number;
  bg_flags: number;
  bg_itable_unused: number;
  bg_checksum: number;
}

export const BG_INODE_UNINIT = 0x1;
export const BG_BLOCK_UNINIT = 0x2;
export const BG_INODE_ZEROED = 0x4;

const BG_CHECKSUM_OFFSET = 0x1e;

/** descriptor_loc: the block that holds descriptor block `nr` (meta_bg scatters them, one per meta group). */
export function descriptorBlockLocation(sb: Superblock, nr: number): number {
  const logicalSbBlock = Math.floor(SUPERBLOCK_OFFSET / sb.blockSize);
  if (!hasIncompat(sb, INCOMPAT.META_BG) || nr < sb.s_first_meta_bg) return logicalSbBlock + nr + 1;
  const bg = sb.descPerBlock * nr;
  let hasSuper = groupHasSuper(sb, bg) ? 1 : 0;
  // With 1 KiB blocks and s_first_data_block 0 (bigalloc), group 0's descriptors sit after block 1, not 0.
  if (sb.blockSize === 1024 && nr === 0 && sb.s_first_data_block === 0) hasSuper++;
  return hasSuper + groupFirstBlock(sb, bg);
}

/** Whether descriptors carry a checksum at all (ext4_has_group_desc_csum). */
export function hasGroupDescChecksum(sb: Superblock): boolean {
  return sb.metadataCsum || hasRoCompat(sb, RO_COMPAT.GDT_CSUM);
}

/** ext4_group_desc_csum: the 16-bit checksum the kernel expects in bg_checksum. */
export function groupDescChecksum(sb: Superblock, group: number, desc: Buffer): number {
  if (sb.metadataCsum) {
    let c = crc32cLe32(sb.csumSeed, group);
    c = crc32c(c, desc, 0, BG_CHECKSUM_OFFSET);
    c = crc32c(c, ZERO2);
    if (BG_CHECKSUM_OFFSET + 2 < sb.descSize) c = crc32c(c, desc, BG_CHECKSUM_OFFSET + 2, sb.descSize);
    return c & 0xffff;
  }
  let c = crc16(0xffff, sb.s_uuid);
  const le = Buffer.allocUnsafe(4);
  le.writeUInt32LE(group >>> 0);
  c = crc16(c, le);
  c = crc16(c, desc, 0, BG_CHECKSUM_OFFSET);
  if (hasIncompat(sb, INCOMPAT.BIT64) && BG_CHECKSUM_OFFSET + 2 < sb.descSize) c = crc16(c, desc, BG_CHECKSUM_OFFSET + 2, sb.descSize);
  return c;
}
const ZERO2 = Buffer.alloc(2);

export function parseGroupDescriptor(sb: Superblock, desc: Buffer): GroupDescriptor {
  const wide = sb.descSize >= 64;
  const hi32 = (off: number) => (wide ? desc.readUInt32LE(off) * 2 ** 32 : 0);
  const hi16 = (off: number) => (wide ? desc.readUInt16LE(off) * 2 ** 16 : 0);
  return {
    bg_block_bitmap: desc.readUInt32LE(0x00) + hi32(0x20),
    bg_inode_bitmap: desc.readUInt32LE(0x04) + hi32(0x24),
    bg_inode_table: desc.readUInt32LE(0x08) + hi32(0x28),
    bg_free_blocks_count: desc.readUInt16LE(0x0c) + hi16(0x2c),
    bg_free_inodes_count: desc.readUInt16LE(0x0e) + hi16(0x2e),
    bg_used_dirs_count: desc.readUInt16LE(0x10) + hi16(0x30),
    bg_flags: desc.readUInt16LE(0x12),
    bg_itable_unused: desc.readUInt16LE(0x1c) + hi16(0x32),
    bg_checksum: desc.readUInt16LE(BG_CHECKSUM_OFFSET),
  };
}

export interface DescriptorReader {
  readBlocks(block: number, count: number): Promise<Buffer>;
}

export interface GroupDescriptors {
  groups: GroupDescriptor[];
  /** Checksum mismatches tolerated, as the kernel's read-only mount tolerates them (one line each, a few at most). */
  tolerated: string[];
}

/** Lines of tolerated damage kept (the count of the rest is said). */
const MAX_TOLERATED_LINES = 4;

/**
 * Read every group descriptor, verifying checksums and that each group's
 * bitmaps and inode table lie inside the filesystem (ext4_check_descriptors).
 * A checksum mismatch is what the kernel tolerates on a read-only mount
 * (it logs "Checksum for group N failed" and mounts): tolerated here too and
 * reported; descriptors pointing outside the filesystem are refused, as the
 * kernel refuses them.
 */
export async function readGroupDescriptors(
  sb: Superblock,
  reader: DescriptorReader,
  image: string,
  options: { retryable?: boolean } = {},
): Promise<GroupDescriptors> {
  const out: GroupDescriptor[] = new Array(sb.groupCount);
  const tolerated: string[] = [];
  let badChecksums = 0;
  const checksummed = hasGroupDescChecksum(sb);
  // Contiguous runs of descriptor blocks are read with one request (the non-meta_bg table is one run).
  let nr = 0;
  while (nr < sb.gdbCount) {
    const start = descriptorBlockLocation(sb, nr);
    let run = 1;
    while (nr + run < sb.gdbCount && descriptorBlockLocation(sb, nr + run) === start + run && run < 256) run++;
    if (start + run > sb.s_blocks_count) {
      throw new ExtCorruptError(image, `group descriptor block ${nr}`, start * sb.blockSize, `block ${start} is past the end of the filesystem`, options);
    }
    const data = await reader.readBlocks(start, run);
    for (let i = 0; i < run; i++) {
      for (let k = 0; k < sb.descPerBlock; k++) {
        const group = (nr + i) * sb.descPerBlock + k;
        if (group >= sb.groupCount) break;
        const off = i * sb.blockSize + k * sb.descSize;
        const raw = data.subarray(off, off + sb.descSize);
        const byteOffset = start * sb.blockSize + off;
        const gd = parseGroupDescriptor(sb, raw);
        if (checksummed) {
          const computed = groupDescChecksum(sb, group, raw);
          if (computed !== gd.bg_checksum) {
            if (++badChecksums <= MAX_TOLERATED_LINES) {
              tolerated.push(`group descriptor ${group} (byte offset ${byteOffset}) fails its checksum (stored 0x${gd.bg_checksum.toString(16)}, computed 0x${computed.toString(16)}); read anyway, as the kernel's read-only mount does (e2fsck -n on a copy tells more)`);
            }
          }
        }
        checkDescriptor(sb, group, gd, image, byteOffset, options);
        out[group] = gd;
      }
    }
    nr += run;
  }
  if (badChecksums > MAX_TOLERATED_LINES) tolerated.push(`${badChecksums - MAX_TOLERATED_LINES} more group descriptors fail their checksums`);
  return { groups: out, tolerated };
}

function checkDescriptor(sb: Superblock, group: number, gd: GroupDescriptor, image: string, offset: number, options: { retryable?: boolean }): void {
  const last = sb.s_blocks_count - 1;
  const bad = (what: string, block: number) => {
    throw new ExtCorruptError(image, `group descriptor ${group}`, offset, `${what} at block ${block} is outside the filesystem (blocks ${sb.s_first_data_block}..${last})`, options);
  };
  if (gd.bg_block_bitmap < sb.s_first_data_block || gd.bg_block_bitmap > last) bad('block bitmap', gd.bg_block_bitmap);
  if (gd.bg_inode_bitmap < sb.s_first_data_block || gd.bg_inode_bitmap > last) bad('inode bitmap', gd.bg_inode_bitmap);
  if (gd.bg_inode_table < sb.s_first_data_block || gd.bg_inode_table + sb.itbPerGroup - 1 > last) bad('inode table', gd.bg_inode_table);
  if (gd.bg_free_inodes_count > sb.s_inodes_per_group) {
    throw new ExtCorruptError(image, `group descriptor ${group}`, offset, `bg_free_inodes_count ${gd.bg_free_inodes_count} exceeds s_inodes_per_group ${sb.s_inodes_per_group}`, options);
  }
}
