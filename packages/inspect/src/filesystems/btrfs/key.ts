/**
 * btrfs keys: (objectid, type, offset), ordered by objectid, then type, then
 * offset. Every tree (root, chunk, extent, FS trees) is sorted by them.
 */
import { DISK_KEY_SIZE } from './layout.ts';

export interface Key {
  objectid: bigint;
  type: number;
  offset: bigint;
}

export const MAX_U64 = 0xffff_ffff_ffff_ffffn;

export function readKey(buf: Buffer, at: number): Key {
  return { objectid: buf.readBigUInt64LE(at), type: buf[at + 8], offset: buf.readBigUInt64LE(at + 9) };
}

export function compareKeys(a: Key, b: Key): number {
  if (a.objectid !== b.objectid) return a.objectid < b.objectid ? -1 : 1;
  if (a.type !== b.type) return a.type < b.type ? -1 : 1;
  if (a.offset !== b.offset) return a.offset < b.offset ? -1 : 1;
  return 0;
}

export function key(objectid: bigint | number, type: number, offset: bigint | number): Key {
  return { objectid: BigInt(objectid), type, offset: BigInt(offset) };
}

export function formatKey(k: Key): string {
  return `(${k.objectid} ${k.type} ${k.offset})`;
}

export { DISK_KEY_SIZE };
