/**
 * Reading one block of a directory or attribute fork by its logical block
 * number: a directory block is sb_dirblklog filesystem blocks, which may lie
 * in several extents; an attribute block is one filesystem block. The pieces
 * come through the metadata cache and are joined. Also the v5 header checks
 * all these blocks share (xfs_da3_blkinfo and xfs_dir3_blk_hdr): CRC over the
 * whole block, the block's own disk address, its owner inode and the UUID.
 */
import { mapFork, type ForkContext } from './bmap.ts';
import type { XfsVolume } from './volume.ts';

export interface DaBlock {
  buf: Buffer;
  /** Linear block number of the first filesystem block. */
  linear: number;
  /** Byte offset of the first filesystem block (for error messages). */
  byteOffset: number;
  /** Where the pieces of the block lie on the device. */
  pieces: { offset: number; length: number }[];
}

/**
 * The `fsbCount` filesystem blocks at logical block `dablk` of a fork, or
 * undefined when the first of them is a hole. A block partly in a hole is
 * corrupt.
 */
export async function readDaBlock(ctx: ForkContext, dablk: number, fsbCount: number, what: string): Promise<DaBlock | undefined> {
  const { vol } = ctx;
  const records = await mapFork(ctx, dablk, fsbCount);
  if (records.length === 0 || records[0].startoff > dablk) {
    if (records.length === 0) return undefined;
    throw vol.corrupt(what, undefined, `block ${dablk} is partly a hole`);
  }
  const parts: Buffer[] = [];
  const pieces: { offset: number; length: number }[] = [];
  let pos = dablk;
  let first: number | undefined;
  for (const r of records) {
    if (r.startoff > pos) throw vol.corrupt(what, undefined, `block ${dablk} is partly a hole`);
    if (r.unwritten) throw vol.corrupt(what, undefined, `block ${dablk} is in an unwritten extent`);
    const skip = pos - r.startoff;
    const take = Math.min(r.blockcount - skip, dablk + fsbCount - pos);
    const linear = vol.fsbToLinear(r.startblock + skip)!;
    first ??= linear;
    parts.push(await vol.readBlocksCached(linear, take));
    pieces.push({ offset: linear * vol.blockSize, length: take * vol.blockSize });
    pos += take;
    if (pos >= dablk + fsbCount) break;
  }
  if (pos < dablk + fsbCount) throw vol.corrupt(what, undefined, `block ${dablk} is partly a hole`);
  const buf = parts.length === 1 ? parts[0] : Buffer.concat(parts);
  return { buf, linear: first!, byteOffset: first! * vol.blockSize, pieces };
}

/**
 * The v5 self-description every directory/attribute block carries: CRC at
 * `crcOffset` over the whole block, the disk address (in 512-byte units) of
 * its first filesystem block at `blknoOffset`, the owning inode at
 * `ownerOffset`, the filesystem UUID at `uuidOffset`.
 */
export function verifyV5Header(vol: XfsVolume, block: DaBlock, owner: number, what: string, offsets: { crc: number; blkno: number; owner: number; uuid: number }): void {
  const b = block.buf;
  vol.verifyCrc(b, offsets.crc, what, block.byteOffset, 0, b.length, block.pieces);
  const bad = (detail: string) => vol.corrupt(what, block.byteOffset, detail);
  if (b.readBigUInt64BE(offsets.blkno) !== BigInt(block.linear * vol.bbPerBlock)) throw bad(`it records disk address ${b.readBigUInt64BE(offsets.blkno)}, not its own`);
  if (b.readBigUInt64BE(offsets.owner) !== BigInt(owner)) throw bad(`it belongs to inode ${b.readBigUInt64BE(offsets.owner)}, not ${owner}`);
  if (!b.subarray(offsets.uuid, offsets.uuid + 16).equals(vol.sb.metaUuid)) throw bad('its UUID is not the filesystem\'s');
}
