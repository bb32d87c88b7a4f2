/**
 * Symbolic link targets: in the inode (local format) when they fit, else in
 * up to a few blocks ("remote"), read one extent at a time as the kernel
 * does (xfs_symlink_remote_read). On v5 each extent starts with a header
 * (magic, the target offset and byte count it holds, CRC over the extent,
 * UUID, owner, disk address) that must describe exactly this piece.
 */
import { mapFork } from './bmap.ts';
import { XfsError } from './errors.ts';
import type { Inode } from './inode.ts';
import { DSYMLINK_HDR, FMT, XFS_SYMLINK_MAGIC, XFS_SYMLINK_MAXLEN } from './layout.ts';
import type { XfsVolume } from './volume.ts';

export async function readSymlinkTarget(vol: XfsVolume, inode: Inode): Promise<Buffer> {
  const where = `symlink inode ${inode.ino}`;
  const size = inode.di_size;
  if (size <= 0 || size > XFS_SYMLINK_MAXLEN) throw vol.corrupt(where, inode.byteOffset, `target length ${size} is outside 1..${XFS_SYMLINK_MAXLEN}`);
  if (inode.data.format === FMT.LOCAL) {
    const target = inode.data.bytes.subarray(0, size);
    if (target.subarray(0, size - 1).includes(0)) throw vol.corrupt(where, inode.byteOffset, 'the target holds a NUL byte');
    return Buffer.from(target);
  }
  if (inode.data.format !== FMT.EXTENTS && inode.data.format !== FMT.BTREE) throw vol.corrupt(where, inode.byteOffset, `data fork format ${inode.data.format}`);
  const v5 = vol.sb.hasCrc;
  const perBlock = vol.blockSize - (v5 ? DSYMLINK_HDR.size : 0);
  const blocks = Math.ceil(size / perBlock);
  const records = await mapFork({ vol, inode, fork: inode.data }, 0, blocks);
  const out = Buffer.alloc(size);
  let offset = 0;
  let expectBlock = 0;
  for (const r of records) {
    if (r.startoff !== expectBlock || r.unwritten) throw vol.corrupt(where, inode.byteOffset, `its target blocks have a hole at block ${expectBlock}`);
    const count = Math.min(r.blockcount, blocks - expectBlock);
    const linear = vol.fsbToLinear(r.startblock)!;
    const buf = await vol.readBytes(linear * vol.blockSize, count * vol.blockSize);
    const byteOffset = linear * vol.blockSize;
    let data = buf;
    let bytes = Math.min(buf.length - (v5 ? DSYMLINK_HDR.size : 0), size - offset);
    if (v5) {
      const bad = (detail: string) => vol.corrupt(`remote target of ${where}`, byteOffset, detail);
      vol.verifyCrc(buf, DSYMLINK_HDR.sl_crc, `remote target of ${where}`, byteOffset);
      if (buf.readUInt32BE(DSYMLINK_HDR.sl_magic) !== XFS_SYMLINK_MAGIC) throw bad('bad magic');
      if (!buf.subarray(DSYMLINK_HDR.sl_uuid, DSYMLINK_HDR.sl_uuid + 16).equals(vol.sb.metaUuid)) throw bad('its UUID is not the filesystem\'s');
      if (buf.readBigUInt64BE(DSYMLINK_HDR.sl_blkno) !== BigInt(linear * vol.bbPerBlock)) throw bad('it records another disk address');
      if (buf.readUInt32BE(DSYMLINK_HDR.sl_offset) !== offset || buf.readUInt32BE(DSYMLINK_HDR.sl_bytes) !== bytes || buf.readBigUInt64BE(DSYMLINK_HDR.sl_owner) !== BigInt(inode.ino)) {
        throw bad(`its header says ${buf.readUInt32BE(DSYMLINK_HDR.sl_bytes)} bytes at ${buf.readUInt32BE(DSYMLINK_HDR.sl_offset)} of inode ${buf.readBigUInt64BE(DSYMLINK_HDR.sl_owner)}, not ${bytes} at ${offset} of inode ${inode.ino}`);
      }
      data = buf.subarray(DSYMLINK_HDR.size);
    }
    bytes = Math.max(0, bytes);
    data.copy(out, offset, 0, bytes);
    offset += bytes;
    expectBlock += count;
    if (expectBlock >= blocks) break;
  }
  if (offset !== size) throw vol.corrupt(where, inode.byteOffset, `only ${offset} of the ${size} target bytes are mapped`);
  const nul = out.indexOf(0);
  if (nul >= 0 && nul < size - 1) throw new XfsError('EFSCORRUPTED', vol.image, `symlink inode ${inode.ino}: the target holds a NUL byte`, { retryable: vol.retryable });
  return nul >= 0 ? out.subarray(0, nul) : out;
}
