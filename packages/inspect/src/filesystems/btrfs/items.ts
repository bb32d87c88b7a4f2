/**
 * The item bodies this reader uses, decoded with every length checked
 * against the item's size: inode items, directory and xattr items (several
 * may share one key on a hash collision), inode refs and extended refs,
 * file extents, root items and root back references, block groups. A
 * decoder throws ItemProblem; the caller names the item and its offset.
 */
import type { Timestamp } from '../filesystem.ts';
import { readKey, type Key } from './key.ts';
import { BLOCK_GROUP_ITEM, DIR_ITEM, FILE_EXTENT, FILE_EXTENT_ITEM, INODE_ITEM, ROOT_ITEM } from './layout.ts';

export class ItemProblem extends Error {}

function need(data: Buffer, size: number, what: string): void {
  if (data.length < size) throw new ItemProblem(`${what} of ${data.length} bytes is shorter than ${size}`);
}

function timespec(data: Buffer, at: number): Timestamp {
  // btrfs_timespec: sec is a signed 64-bit value, nsec below 10^9.
  const sec = data.readBigInt64LE(at);
  const nsec = data.readUInt32LE(at + 8);
  if (nsec >= 1_000_000_000) throw new ItemProblem(`a timestamp has ${nsec} nanoseconds`);
  return { sec: Number(sec), nsec };
}

export interface InodeItem {
  generation: bigint;
  size: bigint;
  nbytes: bigint;
  nlink: number;
  uid: number;
  gid: number;
  mode: number;
  rdev: bigint;
  flags: bigint;
  atime: Timestamp;
  ctime: Timestamp;
  mtime: Timestamp;
  otime: Timestamp;
}

export function parseInodeItem(data: Buffer, at = 0): InodeItem {
  need(data.subarray(at), INODE_ITEM.size_total, 'inode item');
  const d = data.subarray(at);
  return {
    generation: d.readBigUInt64LE(INODE_ITEM.generation),
    size: d.readBigUInt64LE(INODE_ITEM.size),
    nbytes: d.readBigUInt64LE(INODE_ITEM.nbytes),
    nlink: d.readUInt32LE(INODE_ITEM.nlink),
    uid: d.readUInt32LE(INODE_ITEM.uid),
    gid: d.readUInt32LE(INODE_ITEM.gid),
    mode: d.readUInt32LE(INODE_ITEM.mode),
    rdev: d.readBigUInt64LE(INODE_ITEM.rdev),
    flags: d.readBigUInt64LE(INODE_ITEM.flags),
    atime: timespec(d, INODE_ITEM.atime),
    ctime: timespec(d, INODE_ITEM.ctime),
    mtime: timespec(d, INODE_ITEM.mtime),
    otime: timespec(d, INODE_ITEM.otime),
  };
}

/** One entry of a DIR_ITEM, DIR_INDEX or XATTR_ITEM body. */
export interface DirItem {
  location: Key;
  type: number;
  name: Buffer;
  /** The xattr value (empty for directory entries). */
  data: Buffer;
}

/** Every entry packed in one item body. */
export function parseDirItems(body: Buffer, maxName = 255): DirItem[] {
  const out: DirItem[] = [];
  let p = 0;
  while (p < body.length) {
    if (p + DIR_ITEM.size > body.length) throw new ItemProblem(`a directory entry header at byte ${p} runs past the ${body.length}-byte item`);
    const dataLen = body.readUInt16LE(p + DIR_ITEM.data_len);
    const nameLen = body.readUInt16LE(p + DIR_ITEM.name_len);
    const type = body[p + DIR_ITEM.type];
    const end = p + DIR_ITEM.size + nameLen + dataLen;
    if (end > body.length) throw new ItemProblem(`a directory entry at byte ${p} (name ${nameLen}, data ${dataLen} bytes) runs past the ${body.length}-byte item`);
    if (nameLen === 0 || nameLen > maxName) throw new ItemProblem(`a directory entry name of ${nameLen} bytes`);
    const nameStart = p + DIR_ITEM.size;
    out.push({
      location: readKey(body, p + DIR_ITEM.location),
      type,
      name: Buffer.from(body.subarray(nameStart, nameStart + nameLen)),
      data: Buffer.from(body.subarray(nameStart + nameLen, end)),
    });
    p = end;
  }
  return out;
}

/** INODE_REF (key offset = parent directory): index u64, name_len u16, name; repeated. */
export function parseInodeRefs(body: Buffer): { index: bigint; name: Buffer }[] {
  const out: { index: bigint; name: Buffer }[] = [];
  let p = 0;
  while (p < body.length) {
    if (p + 10 > body.length) throw new ItemProblem(`an inode ref at byte ${p} runs past the item`);
    const nameLen = body.readUInt16LE(p + 8);
    if (p + 10 + nameLen > body.length || nameLen === 0) throw new ItemProblem(`an inode ref name of ${nameLen} bytes at byte ${p} does not fit`);
    out.push({ index: body.readBigUInt64LE(p), name: Buffer.from(body.subarray(p + 10, p + 10 + nameLen)) });
    p += 10 + nameLen;
  }
  return out;
}

/** INODE_EXTREF (key offset = hash): parent u64, index u64, name_len u16, name; repeated. */
export function parseInodeExtrefs(body: Buffer): { parent: bigint; index: bigint; name: Buffer }[] {
  const out: { parent: bigint; index: bigint; name: Buffer }[] = [];
  let p = 0;
  while (p < body.length) {
    if (p + 18 > body.length) throw new ItemProblem(`an extended inode ref at byte ${p} runs past the item`);
    const nameLen = body.readUInt16LE(p + 16);
    if (p + 18 + nameLen > body.length || nameLen === 0) throw new ItemProblem(`an extended inode ref name of ${nameLen} bytes does not fit`);
    out.push({ parent: body.readBigUInt64LE(p), index: body.readBigUInt64LE(p + 8), name: Buffer.from(body.subarray(p + 18, p + 18 + nameLen)) });
    p += 18 + nameLen;
  }
  return out;
}

export type FileExtent =
  | { kind: 'inline'; compression: number; ramBytes: bigint; data: Buffer; encryption: number; otherEncoding: number }
  | { kind: 'regular' | 'prealloc'; compression: number; ramBytes: bigint; diskBytenr: bigint; diskNumBytes: bigint; offset: bigint; numBytes: bigint; encryption: number; otherEncoding: number };

export function parseFileExtent(body: Buffer): FileExtent {
  need(body, FILE_EXTENT_ITEM.disk_bytenr, 'file extent item');
  const type = body[FILE_EXTENT_ITEM.type];
  const common = {
    compression: body[FILE_EXTENT_ITEM.compression],
    ramBytes: body.readBigUInt64LE(FILE_EXTENT_ITEM.ram_bytes),
    encryption: body[FILE_EXTENT_ITEM.encryption],
    otherEncoding: body.readUInt16LE(FILE_EXTENT_ITEM.other_encoding),
  };
  if (type === FILE_EXTENT.INLINE) return { kind: 'inline', ...common, data: body.subarray(FILE_EXTENT_ITEM.disk_bytenr) };
  if (type !== FILE_EXTENT.REG && type !== FILE_EXTENT.PREALLOC) throw new ItemProblem(`file extent type ${type}`);
  need(body, FILE_EXTENT_ITEM.size, 'file extent item');
  return {
    kind: type === FILE_EXTENT.REG ? 'regular' : 'prealloc',
    ...common,
    diskBytenr: body.readBigUInt64LE(FILE_EXTENT_ITEM.disk_bytenr),
    diskNumBytes: body.readBigUInt64LE(FILE_EXTENT_ITEM.disk_num_bytes),
    offset: body.readBigUInt64LE(FILE_EXTENT_ITEM.offset),
    numBytes: body.readBigUInt64LE(FILE_EXTENT_ITEM.num_bytes),
  };
}

export interface RootItem {
  bytenr: bigint;
  generation: bigint;
  level: number;
  rootDirid: bigint;
  bytesUsed: bigint;
  flags: bigint;
  refs: number;
  uuid?: Buffer;
  parentUuid?: Buffer;
  otime?: Timestamp;
}

export function parseRootItem(body: Buffer): RootItem {
  need(body, ROOT_ITEM.size_short, 'root item');
  const long = body.length >= ROOT_ITEM.size;
  return {
    bytenr: body.readBigUInt64LE(ROOT_ITEM.bytenr),
    generation: body.readBigUInt64LE(ROOT_ITEM.generation),
    level: body[ROOT_ITEM.level],
    rootDirid: body.readBigUInt64LE(ROOT_ITEM.root_dirid),
    bytesUsed: body.readBigUInt64LE(ROOT_ITEM.bytes_used),
    flags: body.readBigUInt64LE(ROOT_ITEM.flags),
    refs: body.readUInt32LE(ROOT_ITEM.refs),
    ...(long
      ? {
          uuid: Buffer.from(body.subarray(ROOT_ITEM.uuid, ROOT_ITEM.uuid + 16)),
          parentUuid: Buffer.from(body.subarray(ROOT_ITEM.parent_uuid, ROOT_ITEM.parent_uuid + 16)),
          otime: timespec(body, ROOT_ITEM.otime),
        }
      : {}),
  };
}

/** ROOT_BACKREF / ROOT_REF: dirid u64, sequence u64, name_len u16, name. */
export function parseRootRef(body: Buffer): { dirid: bigint; sequence: bigint; name: Buffer } {
  need(body, 18, 'root reference');
  const nameLen = body.readUInt16LE(16);
  if (nameLen === 0 || 18 + nameLen > body.length) throw new ItemProblem(`a root reference name of ${nameLen} bytes does not fit the ${body.length}-byte item`);
  return { dirid: body.readBigUInt64LE(0), sequence: body.readBigUInt64LE(8), name: Buffer.from(body.subarray(18, 18 + nameLen)) };
}

export interface BlockGroupItem {
  used: bigint;
  flags: bigint;
}

export function parseBlockGroupItem(body: Buffer): BlockGroupItem {
  need(body, BLOCK_GROUP_ITEM.size, 'block group item');
  return { used: body.readBigUInt64LE(BLOCK_GROUP_ITEM.used), flags: body.readBigUInt64LE(BLOCK_GROUP_ITEM.flags) };
}
