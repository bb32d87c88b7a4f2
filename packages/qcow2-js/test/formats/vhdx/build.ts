/**
 * VHDX fixtures qemu-img cannot write, built to MS-VHDX 1.0 from images it
 * can: a log that still has to be replayed (as Hyper-V leaves one when the
 * host stops mid-update), differencing disks (parent locator, sector bitmap
 * blocks, partially present blocks), a 4 KiB logical sector size.
 */
import { vhdxChecksum } from '../../../src/formats/vhdx/header.ts';
import { guidBytes, guidString } from '../../../src/formats/common/guid.ts';
import { PARENT_LOCATOR_GUID, VHDX_PARENT_TYPE_GUID } from '../../../src/formats/vhdx/layout.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

export interface Layout {
  /** Offset of the current header. */
  header: number;
  logOffset: number;
  logLength: number;
  batOffset: number;
  metadataOffset: number;
  blockSize: number;
  dataWriteGuid: Buffer;
}

export function layoutOf(image: Buffer): Layout {
  const seq = (at: number) => image.readBigUInt64LE(at + 8);
  const header = seq(128 * KiB) > seq(64 * KiB) ? 128 * KiB : 64 * KiB;
  const regions = new Map<string, number>();
  const count = image.readUInt32LE(192 * KiB + 8);
  for (let i = 0; i < count; i++) {
    const p = 192 * KiB + 16 + i * 32;
    regions.set(guidString(image, p), Number(image.readBigUInt64LE(p + 16)));
  }
  const batOffset = regions.get('2dc27766-f623-4200-9d64-115e9bfd4a08') as number;
  const metadataOffset = regions.get('8b7ca206-4790-4b9a-b8fe-575f050f886e') as number;
  const item = findItem(image, metadataOffset, 'caa16737-fa36-4d43-b3b6-33f0aa44e76b') as number;
  return {
    header,
    logOffset: Number(image.readBigUInt64LE(header + 72)),
    logLength: image.readUInt32LE(header + 68),
    batOffset,
    metadataOffset,
    blockSize: image.readUInt32LE(metadataOffset + item),
    dataWriteGuid: Buffer.from(image.subarray(header + 32, header + 48)),
  };
}

/** The offset (in the metadata region) of the item with this GUID. */
function findItem(image: Buffer, metadataOffset: number, guid: string): number | undefined {
  const count = image.readUInt16LE(metadataOffset + 10);
  for (let i = 0; i < count; i++) {
    const p = metadataOffset + 32 + i * 32;
    if (guidString(image, p) === guid) return image.readUInt32LE(p + 16);
  }
  return undefined;
}

export function mendHeader(image: Buffer, at: number): void {
  image.writeUInt32LE(vhdxChecksum(image.subarray(at, at + 4 * KiB)), at + 4);
}

export function batEntry(image: Buffer, layout: Layout, index: number): { state: number; offset: number } {
  const e = image.readBigUInt64LE(layout.batOffset + index * 8);
  return { state: Number(e & 7n), offset: Number(e >> 20n) * MiB };
}

export function setBatEntry(image: Buffer, layout: Layout, index: number, state: number, offset = 0): void {
  image.writeBigUInt64LE((BigInt(offset / MiB) << 20n) | BigInt(state), layout.batOffset + index * 8);
}

export type LogDescriptor = { kind: 'data'; fileOffset: number; sector: Buffer } | { kind: 'zero'; fileOffset: number; length: number };

/** One log entry (header, descriptors, data sectors) as bytes, its checksum set. */
export function logEntry(options: { sequence: bigint; tail: number; logGuid: Buffer; flushedFileOffset: number; lastFileOffset: number; descriptors: LogDescriptor[] }): Buffer {
  const count = options.descriptors.length;
  const descSectors = Math.ceil((count + 2) / 128);
  const data = options.descriptors.filter((d) => d.kind === 'data');
  const entry = Buffer.alloc((descSectors + data.length) * 4 * KiB);
  entry.write('loge', 0, 'latin1');
  entry.writeUInt32LE(entry.length, 8);
  entry.writeUInt32LE(options.tail, 12);
  entry.writeBigUInt64LE(options.sequence, 16);
  entry.writeUInt32LE(count, 24);
  options.logGuid.copy(entry, 32);
  entry.writeBigUInt64LE(BigInt(options.flushedFileOffset), 48);
  entry.writeBigUInt64LE(BigInt(options.lastFileOffset), 56);
  let dataIndex = 0;
  options.descriptors.forEach((d, i) => {
    const p = 64 + i * 32;
    if (d.kind === 'zero') {
      entry.write('zero', p, 'latin1');
      entry.writeBigUInt64LE(BigInt(d.length), p + 8);
    } else {
      entry.write('desc', p, 'latin1');
      d.sector.copy(entry, p + 4, 4092, 4096);
      d.sector.copy(entry, p + 8, 0, 8);
      const s = (descSectors + dataIndex++) * 4 * KiB;
      entry.write('data', s, 'latin1');
      entry.writeUInt32LE(Number(options.sequence >> 32n), s + 4);
      d.sector.copy(entry, s + 8, 8, 4092);
      entry.writeUInt32LE(Number(options.sequence & 0xffffffffn), s + 4092);
    }
    entry.writeBigUInt64LE(BigInt(d.fileOffset), p + 16);
    entry.writeBigUInt64LE(options.sequence, p + 24);
  });
  entry.writeUInt32LE(vhdxChecksum(entry), 4);
  return entry;
}

/** Put `entries` into the log at their log offsets and make the current header say the log must be replayed. */
export function withLog(image: Buffer, entries: { slot: number; bytes: Buffer }[], logGuid: Buffer): Buffer {
  const out = Buffer.from(image);
  const layout = layoutOf(out);
  for (const e of entries) e.bytes.copy(out, layout.logOffset + e.slot);
  logGuid.copy(out, layout.header + 48);
  mendHeader(out, layout.header);
  return out;
}

export const LOG_GUID = guidBytes('5c0ffee0-1234-4567-89ab-cdef01234567');

/** The parent locator item: type, then key/value pairs of UTF-16LE strings. */
export function parentLocator(pairs: [string, string][]): Buffer {
  const strings: Buffer[] = [];
  const header = Buffer.alloc(20 + pairs.length * 12);
  VHDX_PARENT_TYPE_GUID.copy(header, 0);
  header.writeUInt16LE(pairs.length, 18);
  let at = header.length;
  pairs.forEach(([k, v], i) => {
    const key = Buffer.from(k, 'utf16le');
    const value = Buffer.from(v, 'utf16le');
    const p = 20 + i * 12;
    header.writeUInt32LE(at, p);
    header.writeUInt32LE(at + key.length, p + 4);
    header.writeUInt16LE(key.length, p + 8);
    header.writeUInt16LE(value.length, p + 10);
    strings.push(key, value);
    at += key.length + value.length;
  });
  return Buffer.concat([header, ...strings]);
}

/**
 * Make a dynamic VHDX a differencing one: HasParent, a parent locator item,
 * and (for partially present blocks) a sector bitmap block appended to the
 * file, its BAT entry after the chunk's payload entries.
 */
export function makeDifferencing(image: Buffer, locator: Buffer, bitmap?: Buffer): Buffer {
  const layout = layoutOf(image);
  let out = Buffer.from(image);
  const md = layout.metadataOffset;
  const params = findItem(out, md, 'caa16737-fa36-4d43-b3b6-33f0aa44e76b') as number;
  out.writeUInt32LE(out.readUInt32LE(md + params + 4) | 2, md + params + 4);
  const count = out.readUInt16LE(md + 10);
  const entry = md + 32 + count * 32;
  const itemOffset = 512 * KiB;
  PARENT_LOCATOR_GUID.copy(out, entry);
  out.writeUInt32LE(itemOffset, entry + 16);
  out.writeUInt32LE(locator.length, entry + 20);
  out.writeUInt32LE(4, entry + 24);
  out.writeUInt16LE(count + 1, md + 10);
  locator.copy(out, md + itemOffset);
  if (bitmap) {
    const at = Math.ceil(out.length / MiB) * MiB;
    const grown = Buffer.alloc(at + MiB);
    out.copy(grown);
    bitmap.copy(grown, at);
    out = grown;
    const chunkRatio = (2 ** 23 * 512) / layout.blockSize;
    setBatEntry(out, layout, chunkRatio, 6, at);
  }
  return out;
}

export interface Bytes {
  size: number;
  read(at: number, length: number): Buffer;
  write(at: number, bytes: Buffer): void;
}

export const ofBuffer = (b: Buffer): Bytes => ({ size: b.length, read: (at, length) => b.subarray(at, at + length), write: (at, bytes) => void bytes.copy(b, at) });

/** Mend every checksum a mutation may have broken: both headers, both region tables, log entries. */
export function mendAll(f: Bytes): void {
  const fix = (at: number, length: number, signature: string) => {
    if (f.size < at + length) return;
    const block = Buffer.from(f.read(at, length));
    if (block.toString('latin1', 0, 4) !== signature) return;
    block.writeUInt32LE(vhdxChecksum(block), 4);
    f.write(at + 4, block.subarray(4, 8));
  };
  for (const at of [64 * KiB, 128 * KiB]) fix(at, 4 * KiB, 'head');
  for (const at of [192 * KiB, 256 * KiB]) fix(at, 64 * KiB, 'regi');
  for (let slot = 0; slot < MiB && MiB + slot + 4096 <= f.size; slot += 4096) {
    const head = f.read(MiB + slot, 16);
    if (head.toString('latin1', 0, 4) !== 'loge') continue;
    const length = head.readUInt32LE(8);
    if (length % 4096 || length === 0 || slot + length > MiB) continue;
    fix(MiB + slot, length, 'loge');
  }
}
