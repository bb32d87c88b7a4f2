/**
 * Surgery on qcow2 fixtures, for hostile-input tests: find where a field or
 * an L2 entry lives (parsed here independently of the reader under test) and
 * overwrite it. Only ever applied to the tests' own copies.
 */
import { open, readFile } from 'node:fs/promises';

export interface RawHeader {
  version: number;
  clusterBits: number;
  clusterSize: number;
  size: number;
  l1Size: number;
  l1TableOffset: number;
  headerLength: number;
  extendedL2: boolean;
  backingFileOffset: number;
}

export async function rawHeader(path: string): Promise<RawHeader> {
  const b = await readFile(path);
  const version = b.readUInt32BE(4);
  const clusterBits = b.readUInt32BE(20);
  const incompatible = version >= 3 ? b.readBigUInt64BE(72) : 0n;
  return {
    version,
    clusterBits,
    clusterSize: 2 ** clusterBits,
    size: Number(b.readBigUInt64BE(24)),
    l1Size: b.readUInt32BE(36),
    l1TableOffset: Number(b.readBigUInt64BE(40)),
    headerLength: version >= 3 ? b.readUInt32BE(100) : 72,
    extendedL2: (incompatible & 16n) !== 0n,
    backingFileOffset: Number(b.readBigUInt64BE(8)),
  };
}

/** File offset of the L2 entry that maps `guestOffset` (the L2 table must exist). */
export async function l2EntryOffset(path: string, guestOffset: number): Promise<number> {
  const h = await rawHeader(path);
  const b = await readFile(path);
  const entryBytes = h.extendedL2 ? 16 : 8;
  const l2Entries = h.clusterSize / entryBytes;
  const cluster = Math.floor(guestOffset / h.clusterSize);
  const l1Index = Math.floor(cluster / l2Entries);
  const l2Offset = Number(b.readBigUInt64BE(h.l1TableOffset + l1Index * 8) & 0x00fffffffffffe00n);
  if (l2Offset === 0) throw new Error(`${path}: no L2 table for guest offset ${guestOffset}`);
  return l2Offset + (cluster % l2Entries) * entryBytes;
}

export async function readU64(path: string, offset: number): Promise<bigint> {
  const b = await readFile(path);
  return b.readBigUInt64BE(offset);
}

export async function writeU32(path: string, offset: number, value: number): Promise<void> {
  const buf = Buffer.alloc(4);
  buf.writeUInt32BE(value >>> 0);
  await patch(path, offset, buf);
}

export async function writeU64(path: string, offset: number, value: bigint): Promise<void> {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64BE(value);
  await patch(path, offset, buf);
}

export async function patch(path: string, offset: number, bytes: Buffer): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, offset);
  } finally {
    await fh.close();
  }
}

/** Offset of the header extension of `type` (its 8-byte header), or undefined. */
export async function findExtension(path: string, type: number): Promise<number | undefined> {
  const h = await rawHeader(path);
  const b = await readFile(path);
  const end = h.backingFileOffset || h.clusterSize;
  for (let p = h.headerLength; p + 8 <= end; ) {
    const t = b.readUInt32BE(p);
    const len = b.readUInt32BE(p + 4);
    if (t === 0) return undefined;
    if (t === type) return p;
    p += 8 + Math.ceil(len / 8) * 8;
  }
  return undefined;
}

export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_TABLE = 0x6803f857;
