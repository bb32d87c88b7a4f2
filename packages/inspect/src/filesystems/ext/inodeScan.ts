/**
 * Every inode of the filesystem, in inode order, straight from the inode
 * tables (a forensic view: fls/ils do the same): those in use, and with
 * `deleted` those whose link count is zero but whose mode and deletion time
 * are still on disk. Groups the kernel never initialised (INODE_UNINIT, and
 * the unused tail bg_itable_unused counts) hold no inodes and are skipped.
 * A deleted inode whose checksum no longer matches is left out: its bytes
 * cannot be trusted, and nothing else depends on it.
 */
import { hasGroupDescChecksum, BG_INODE_UNINIT } from './groupDescriptor.ts';
import { decodeInode, type Inode } from './inode.ts';
import type { ExtVolume } from './volume.ts';

const ROOT_INO = 2;
/** Inode-table blocks read per request. */
const CHUNK_BLOCKS = 64;

export interface ScannedInode {
  inode: Inode;
  deleted: boolean;
}

export async function* scanInodes(vol: ExtVolume, deleted: boolean): AsyncGenerator<ScannedInode> {
  const sb = vol.sb;
  const checksummed = hasGroupDescChecksum(sb);
  for (let g = 0; g < sb.groupCount; g++) {
    const gd = vol.groups[g];
    if (checksummed && gd.bg_flags & BG_INODE_UNINIT) continue;
    const used = checksummed ? Math.max(0, sb.s_inodes_per_group - gd.bg_itable_unused) : sb.s_inodes_per_group;
    const blocks = Math.ceil((used * sb.s_inode_size) / sb.blockSize);
    for (let first = 0; first < blocks; first += CHUNK_BLOCKS) {
      const count = Math.min(CHUNK_BLOCKS, blocks - first);
      const tableBlock = gd.bg_inode_table + first;
      if (!vol.validRange(tableBlock, count)) throw vol.corrupt(`inode table of group ${g}`, undefined, `blocks ${tableBlock}..${tableBlock + count - 1} lie outside the filesystem`);
      const data = await vol.readBlocks(tableBlock, count);
      const perChunk = Math.floor((count * sb.blockSize) / sb.s_inode_size);
      for (let i = 0; i < perChunk; i++) {
        const index = (first * sb.blockSize) / sb.s_inode_size + i;
        if (index >= used) break;
        const ino = g * sb.s_inodes_per_group + index + 1;
        if (ino !== ROOT_INO && ino < sb.s_first_ino) continue;
        const raw = data.subarray(i * sb.s_inode_size, (i + 1) * sb.s_inode_size);
        const mode = raw.readUInt16LE(0x00);
        const links = raw.readUInt16LE(0x1a);
        const dtime = raw.readUInt32LE(0x14);
        if (mode === 0) continue;
        const byteOffset = tableBlock * sb.blockSize + i * sb.s_inode_size;
        if (links > 0) {
          yield { inode: decodeInode(vol, ino, Buffer.from(raw), byteOffset), deleted: false };
        } else if (deleted && dtime !== 0) {
          let inode: Inode;
          try {
            inode = decodeInode(vol, ino, Buffer.from(raw), byteOffset, { special: true });
          } catch {
            continue;
          }
          yield { inode, deleted: true };
        }
      }
    }
  }
}
