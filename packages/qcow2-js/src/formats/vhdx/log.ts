/**
 * The VHDX metadata log, replayed in memory. A writer (Hyper-V, QEMU) puts
 * every metadata update in the log first; a file closed before the updates
 * reached their places still has them there, and its header's LogGuid says
 * so. Readers must apply the log before trusting the region table, metadata
 * or BAT. QEMU does that only when it may write the file (a read-only open
 * fails, naming `qemu-img check -r all`); guestlens never writes, so it
 * builds the replayed view in memory: a block source that is the file with
 * the logged sectors laid over it.
 *
 * Finding what to replay (MS-VHDX 2.3.3): every 4 KiB slot of the circular
 * log may start an entry; an entry is valid when its header ("loge", the
 * header's LogGuid, a length in whole sectors that fits, a sequence number
 * above 0), descriptors ("desc"/"zero", the entry's sequence number, 4 KiB
 * aligned offsets) and CRC-32C over the whole entry hold. The entry with the
 * largest sequence number is the head; its Tail field points at the first
 * entry of the active sequence, and from there every entry must follow the
 * one before it in the log, with the next sequence number, up to the head.
 * The entries are applied in that order: data descriptors write one 4 KiB
 * sector (8 leading and 4 trailing bytes from the descriptor, 4084 from the
 * data sector, whose signature and sequence number must match), zero
 * descriptors write zeros.
 */
import { checkRange, crc32c, readInto, type BlockSource, type Extent } from '@guestlens/block';
import { corruptError, unsupportedError } from '../../errors.ts';
import type { VhdxHeader } from './header.ts';
import { LOG_DATA_SIGNATURE, LOG_DESC_SIGNATURE, LOG_ENTRY_SIGNATURE, LOG_SECTOR_BYTES, LOG_ZERO_SIGNATURE, MiB } from './layout.ts';

/** Logs bigger than this are not replayed in memory (Hyper-V and QEMU make 1 MiB logs). */
export const MAX_REPLAY_LOG_BYTES = 64 * MiB;
const HEADER_BYTES = 64;
const DESCRIPTOR_BYTES = 32;
/** Zero descriptors replayed at most (each is looked at by every read). */
const MAX_ZERO_RANGES = 4096;
const HINT = 'replay it on a copy with qemu-img check -r all COPY (which writes the copy), then read the copy';

interface LogEntry {
  /** Offset of the entry in the log. */
  slot: number;
  sequence: bigint;
  length: number;
  tail: number;
  flushedFileOffset: bigint;
  lastFileOffset: bigint;
  descriptors: Descriptor[];
  /** Log offsets of the data sectors, one per data descriptor in order. */
  dataSlots: number[];
}

interface Descriptor {
  kind: 'zero' | 'data';
  fileOffset: number;
  zeroLength: number;
  leading: Buffer;
  trailing: Buffer;
  sequence: bigint;
}

export interface ReplayResult {
  file: BlockSource;
  entries: number;
}

/**
 * The file as it reads after the log is replayed, or the file itself when the
 * log is empty (a zero LogGuid, or no valid entry).
 */
export async function replayLog(file: BlockSource, header: VhdxHeader, image: string): Promise<ReplayResult> {
  if (header.logGuid.every((b) => b === 0) || header.logLength === 0) return { file, entries: 0 };
  if (header.logLength > MAX_REPLAY_LOG_BYTES) {
    throw unsupportedError(image, `has a ${header.logLength}-byte log that must be replayed before it can be read, too large to replay in memory (at most ${MAX_REPLAY_LOG_BYTES})`, header.at + 68, HINT);
  }
  if (header.logOffset + header.logLength > file.size) {
    throw corruptError(image, `log (${header.logLength} bytes at ${header.logOffset}) runs past the end of the file (${file.size} bytes)`, header.at + 72);
  }
  const log = await file.read(header.logOffset, header.logLength);
  const valid = scanEntries(log, header);
  if (valid.length === 0) return { file, entries: 0 };
  let head = valid[0];
  for (const e of valid) if (e.sequence > head.sequence) head = e;
  const sequence = activeSequence(valid, head, log.length, image, header);
  const view = new ReplayedFile(file, image);
  for (const entry of sequence) {
    if (entry.flushedFileOffset > BigInt(file.size)) {
      throw corruptError(image, `log entry ${entry.sequence} says the file was at least ${entry.flushedFileOffset} bytes long, but it is ${file.size}: the file was truncated`, header.logOffset + entry.slot + 48);
    }
    let data = 0;
    for (const d of entry.descriptors) {
      if (d.kind === 'zero') view.zero(d.fileOffset, d.zeroLength);
      else view.write(d.fileOffset, dataSector(log, entry.dataSlots[data++], d, entry, header, image));
    }
    view.extendTo(entry.lastFileOffset);
  }
  return { file: view, entries: sequence.length };
}

/** Every valid entry in the log, by slot. */
function scanEntries(log: Buffer, header: VhdxHeader): LogEntry[] {
  const entries: LogEntry[] = [];
  for (let slot = 0; slot + LOG_SECTOR_BYTES <= log.length; slot += LOG_SECTOR_BYTES) {
    const entry = parseEntry(log, slot, header);
    if (entry) entries.push(entry);
  }
  return entries;
}

/** The 4 KiB sector `index` sectors after `slot`, wrapping around the circular log. */
function sectorAt(log: Buffer, slot: number, index: number): Buffer {
  const at = (slot + index * LOG_SECTOR_BYTES) % log.length;
  return log.subarray(at, at + LOG_SECTOR_BYTES);
}

function parseEntry(log: Buffer, slot: number, header: VhdxHeader): LogEntry | undefined {
  const first = log.subarray(slot, slot + LOG_SECTOR_BYTES);
  if (first.toString('latin1', 0, 4) !== LOG_ENTRY_SIGNATURE) return undefined;
  const length = first.readUInt32LE(8);
  const sequence = first.readBigUInt64LE(16);
  const count = first.readUInt32LE(24);
  if (length === 0 || length % LOG_SECTOR_BYTES || length > log.length || sequence === 0n) return undefined;
  if (!first.subarray(32, 48).equals(header.logGuid)) return undefined;
  const descSectors = Math.ceil((count + 2) / 128);
  const sectors = length / LOG_SECTOR_BYTES;
  if (descSectors > sectors) return undefined;
  // CRC-32C over the whole entry with the checksum field taken as zero.
  let crc = 0xffffffff;
  for (let i = 0; i < sectors; i++) {
    const s = sectorAt(log, slot, i);
    if (i === 0) {
      crc = crc32c(crc, s, 0, 4);
      crc = crc32c(crc, ZERO4);
      crc = crc32c(crc, s, 8);
    } else crc = crc32c(crc, s);
  }
  if ((~crc >>> 0) !== first.readUInt32LE(4)) return undefined;
  const descriptors: Descriptor[] = [];
  const dataSlots: number[] = [];
  for (let i = 0; i < count; i++) {
    const pos = HEADER_BYTES + i * DESCRIPTOR_BYTES;
    const s = sectorAt(log, slot, Math.floor(pos / LOG_SECTOR_BYTES));
    const d = s.subarray(pos % LOG_SECTOR_BYTES, (pos % LOG_SECTOR_BYTES) + DESCRIPTOR_BYTES);
    const sig = d.toString('latin1', 0, 4);
    const fileOffset = d.readBigUInt64LE(16);
    const descSequence = d.readBigUInt64LE(24);
    if (descSequence !== sequence || fileOffset % BigInt(LOG_SECTOR_BYTES) || fileOffset > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
    if (sig === LOG_ZERO_SIGNATURE) {
      const zeroLength = d.readBigUInt64LE(8);
      if (zeroLength % BigInt(LOG_SECTOR_BYTES) || zeroLength > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
      descriptors.push({ kind: 'zero', fileOffset: Number(fileOffset), zeroLength: Number(zeroLength), leading: ZERO4, trailing: ZERO4, sequence: descSequence });
    } else if (sig === LOG_DESC_SIGNATURE) {
      const index = descSectors + dataSlots.length;
      if (index >= sectors) return undefined;
      dataSlots.push((slot + index * LOG_SECTOR_BYTES) % log.length);
      descriptors.push({ kind: 'data', fileOffset: Number(fileOffset), zeroLength: 0, trailing: Buffer.from(d.subarray(4, 8)), leading: Buffer.from(d.subarray(8, 16)), sequence: descSequence });
    } else return undefined;
  }
  return {
    slot,
    sequence,
    length,
    tail: first.readUInt32LE(12),
    flushedFileOffset: first.readBigUInt64LE(48),
    lastFileOffset: first.readBigUInt64LE(56),
    descriptors,
    dataSlots,
  };
}
const ZERO4 = Buffer.alloc(4);

/** The entries from the head's tail up to the head, each right after the one before. */
function activeSequence(valid: LogEntry[], head: LogEntry, logLength: number, image: string, header: VhdxHeader): LogEntry[] {
  const bySlot = new Map(valid.map((e) => [e.slot, e]));
  const chain: LogEntry[] = [];
  let entry = bySlot.get(head.tail);
  for (let guard = 0; entry && guard <= valid.length; guard++) {
    const previous = chain[chain.length - 1];
    if (previous && entry.sequence !== previous.sequence + 1n) break;
    chain.push(entry);
    if (entry === head) return chain;
    entry = bySlot.get((entry.slot + entry.length) % logLength);
  }
  throw corruptError(
    image,
    `its log must be replayed, but the active sequence is broken: the newest entry (sequence ${head.sequence}, at log offset ${head.slot}) cannot be reached from its tail (log offset ${head.tail})`,
    header.logOffset + head.slot,
  );
}

function dataSector(log: Buffer, dataSlot: number, d: Descriptor, entry: LogEntry, header: VhdxHeader, image: string): Buffer {
  const s = log.subarray(dataSlot, dataSlot + LOG_SECTOR_BYTES);
  const sequence = (BigInt(s.readUInt32LE(4)) << 32n) | BigInt(s.readUInt32LE(4092));
  if (s.toString('latin1', 0, 4) !== LOG_DATA_SIGNATURE || sequence !== entry.sequence) {
    throw corruptError(image, `log entry ${entry.sequence}: the data sector at log offset ${dataSlot} does not belong to it (signature or sequence number)`, header.logOffset + dataSlot);
  }
  const out = Buffer.alloc(LOG_SECTOR_BYTES);
  d.leading.copy(out, 0);
  s.copy(out, 8, 8, 4092);
  d.trailing.copy(out, 4092);
  return out;
}

/**
 * The file with replayed sectors over it. Later writes win: a zeroed range
 * drops the sectors written before it, and a sector written after a zeroed
 * range is found first.
 */
export class ReplayedFile implements BlockSource {
  private readonly sectors = new Map<number, Buffer>();
  private readonly zeroRanges: Array<[number, number]> = [];
  private replayedEnd = 0;

  constructor(
    private readonly base: BlockSource,
    readonly name: string,
  ) {}

  get size(): number {
    return Math.max(this.base.size, this.replayedEnd);
  }

  write(offset: number, sector: Buffer): void {
    this.sectors.set(offset / LOG_SECTOR_BYTES, sector);
    this.replayedEnd = Math.max(this.replayedEnd, offset + LOG_SECTOR_BYTES);
  }

  zero(offset: number, length: number): void {
    if (length === 0) return;
    if (this.zeroRanges.length >= MAX_ZERO_RANGES) throw unsupportedError(this.name, `its log zeroes more than ${MAX_ZERO_RANGES} ranges, more than guestlens replays in memory`, undefined, HINT);
    const first = offset / LOG_SECTOR_BYTES;
    const last = (offset + length) / LOG_SECTOR_BYTES;
    for (const index of [...this.sectors.keys()]) if (index >= first && index < last) this.sectors.delete(index);
    this.zeroRanges.push([offset, offset + length]);
    this.replayedEnd = Math.max(this.replayedEnd, offset + length);
  }

  /** A log entry's LastFileOffset: the file was at least this long (QEMU rounds it up to a MiB). */
  extendTo(lastFileOffset: bigint): void {
    if (lastFileOffset <= BigInt(this.size) || lastFileOffset > BigInt(Number.MAX_SAFE_INTEGER)) return;
    this.replayedEnd = Math.ceil(Number(lastFileOffset) / MiB) * MiB;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    await this.readInto(out, 0, offset, length);
    return out;
  }

  async readInto(target: Buffer, targetOffset: number, offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    const present = Math.max(0, Math.min(length, this.base.size - offset));
    if (present > 0) await readInto(this.base, target, targetOffset, offset, present);
    if (present < length) target.fill(0, targetOffset + present, targetOffset + length);
    const end = offset + length;
    for (const [from, to] of this.zeroRanges) {
      const a = Math.max(from, offset);
      const b = Math.min(to, end);
      if (a < b) target.fill(0, targetOffset + a - offset, targetOffset + b - offset);
    }
    if (this.sectors.size === 0) return;
    for (let index = Math.floor(offset / LOG_SECTOR_BYTES); index * LOG_SECTOR_BYTES < end; index++) {
      const sector = this.sectors.get(index);
      if (!sector) continue;
      const start = index * LOG_SECTOR_BYTES;
      const a = Math.max(start, offset);
      const b = Math.min(start + LOG_SECTOR_BYTES, end);
      sector.copy(target, targetOffset + a - offset, a - start, b - start);
    }
  }

  async extent(offset: number, length: number): Promise<Extent> {
    checkRange(this, offset, length);
    return { offset, length, kind: 'data' };
  }

  /** The replay is of the log as it was at open; the layer re-opens its log on refresh. */
  async refresh(): Promise<void> {
    await this.base.refresh();
  }

  async close(): Promise<void> {
    await this.base.close();
  }
}
