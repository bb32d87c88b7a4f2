/**
 * The inode btree of an AG (rooted in its AGI): records of 64-inode chunks
 * in AG-inode order, each with a free mask and, with sparse inodes, a hole
 * mask of 4-inode groups that were never allocated. Walked from the
 * leftmost leaf along right siblings; start inodes must increase, which
 * also rules out sibling cycles. Blocks are checked as the kernel checks
 * short-form btree blocks (magic, level, record count; v5 CRC, address,
 * owning AG, UUID).
 */
import { readAgi } from './allocationGroup.ts';
import {
  BTREE,
  BTREE_SBLOCK_CRC_LEN,
  BTREE_SBLOCK_LEN,
  INOBT_KEY_LEN,
  INOBT_PTR_LEN,
  INOBT_REC_LEN,
  NULLAGBLOCK,
  XFS_IBT_CRC_MAGIC,
  XFS_IBT_MAGIC,
  XFS_INODES_PER_CHUNK,
} from './layout.ts';
import type { XfsVolume } from './volume.ts';

export interface InobtRecord {
  /** First AG inode number of the chunk. */
  startino: number;
  /** Bit i set: inodes [4i, 4i+4) of the chunk were never allocated (sparse chunks). */
  holemask: number;
  /** Bit i set: inode i of the chunk is free. */
  free: bigint;
}

interface ShortBlock {
  buf: Buffer;
  level: number;
  numrecs: number;
  rightsib: number;
  hdr: number;
  byteOffset: number;
}

async function loadBlock(vol: XfsVolume, agno: number, agbno: number, level: number): Promise<ShortBlock> {
  const where = `inode btree block of AG ${agno}`;
  const linear = vol.agbToLinear(agno, agbno);
  if (linear === undefined) throw vol.corrupt(where, undefined, `pointer to AG block ${agbno}, outside the AG`);
  const byteOffset = linear * vol.blockSize;
  const buf = await vol.readBlock(linear);
  const bad = (detail: string) => vol.corrupt(where, byteOffset, detail);
  const crc = vol.sb.hasCrc;
  const magic = buf.readUInt32BE(BTREE.bb_magic);
  if (magic !== (crc ? XFS_IBT_CRC_MAGIC : XFS_IBT_MAGIC)) throw bad(`bad magic 0x${magic.toString(16)}`);
  if (crc) {
    vol.verifyCrc(buf, BTREE.s_crc, where, byteOffset);
    if (buf.readBigUInt64BE(BTREE.s_blkno) !== BigInt(linear * vol.bbPerBlock)) throw bad('it records another disk address');
    if (buf.readUInt32BE(BTREE.s_owner) !== agno) throw bad(`it belongs to AG ${buf.readUInt32BE(BTREE.s_owner)}`);
    if (!buf.subarray(BTREE.s_uuid, BTREE.s_uuid + 16).equals(vol.sb.metaUuid)) throw bad('its UUID is not the filesystem\'s');
  }
  const hdr = crc ? BTREE_SBLOCK_CRC_LEN : BTREE_SBLOCK_LEN;
  const blockLevel = buf.readUInt16BE(BTREE.bb_level);
  const numrecs = buf.readUInt16BE(BTREE.bb_numrecs);
  if (blockLevel !== level) throw bad(`level ${blockLevel} where ${level} was expected`);
  const maxrecs = Math.floor((vol.blockSize - hdr) / (level === 0 ? INOBT_REC_LEN : INOBT_KEY_LEN + INOBT_PTR_LEN));
  if (numrecs > maxrecs) throw bad(`${numrecs} records (at most ${maxrecs} fit)`);
  return { buf, level: blockLevel, numrecs, rightsib: buf.readUInt32BE(BTREE.s_rightsib), hdr, byteOffset };
}

/** Every inode-chunk record of AG `agno`, in order. */
export async function* inodeChunks(vol: XfsVolume, agno: number): AsyncGenerator<InobtRecord> {
  const agi = await readAgi(vol, agno);
  let block = await loadBlock(vol, agno, agi.agi_root, agi.agi_level - 1);
  let budget = vol.agLength(agno);
  while (block.level > 0) {
    if (block.numrecs === 0) throw vol.corrupt(`inode btree block of AG ${agno}`, block.byteOffset, 'an empty node');
    const maxrecs = Math.floor((vol.blockSize - block.hdr) / (INOBT_KEY_LEN + INOBT_PTR_LEN));
    const child = block.buf.readUInt32BE(block.hdr + maxrecs * INOBT_KEY_LEN);
    block = await loadBlock(vol, agno, child, block.level - 1);
  }
  let prev = -1;
  for (;;) {
    for (let i = 0; i < block.numrecs; i++) {
      const r = block.hdr + i * INOBT_REC_LEN;
      const startino = block.buf.readUInt32BE(r);
      const holemask = vol.sb.hasSparseInodes ? block.buf.readUInt16BE(r + 4) : 0;
      const where = `inode btree leaf of AG ${agno}`;
      // Ordered, but not necessarily a multiple of 64: without the inode-alignment feature (old v4, small blocks) chunks start anywhere.
      if (startino <= prev) throw vol.corrupt(where, block.byteOffset, `chunk at AG inode ${startino} is out of order`);
      if (!vol.validAgino(agno, startino)) throw vol.corrupt(where, block.byteOffset, `chunk at AG inode ${startino} lies outside the AG`);
      prev = startino;
      yield { startino, holemask, free: block.buf.readBigUInt64BE(r + 8) };
    }
    if (block.rightsib === NULLAGBLOCK) return;
    if (--budget < 0) throw vol.corrupt(`inode btree of AG ${agno}`, undefined, 'more leaves than the AG has blocks');
    block = await loadBlock(vol, agno, block.rightsib, 0);
  }
}
