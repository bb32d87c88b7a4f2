/**
 * Transaction logs (.LOG, .LOG1, .LOG2) are summarised, never replayed: we
 * read a log's base block and, for the new format (Windows 8.1 and later),
 * the headers of its log entries, to say whether it holds changes the
 * primary file lacks. As Windows decides it, log data matters only when the
 * primary file is dirty: then an old-format log whose time stamp matches the
 * primary's, or new-format entries whose sequence number is at least the
 * primary's, would be replayed at the next boot. (Entry hashes, Marvin32,
 * are not verified: a summary needs no more than the headers.)
 */
import type { BlockSource } from '@guestlens/block';
import { BASE_BLOCK, FILE_TYPE, REGF_SIGNATURE } from './layout.ts';
import { baseBlockChecksum, type BaseBlock } from './baseBlock.ts';
import { readFiletime } from './filetime.ts';

export interface TransactionLogInput {
  /** How messages name it ("C:\Windows\System32\config\SYSTEM.LOG1"). */
  name: string;
  data: Buffer | BlockSource;
}

export interface TransactionLogInfo {
  name: string;
  size: number;
  /** old: a dirty vector and pages (up to Windows 8); new: HvLE log entries (Windows 8.1 and later). */
  format: 'empty' | 'old' | 'new' | 'unknown';
  /** Why the log cannot be used, when it cannot. */
  problem?: string;
  primarySequence?: number;
  secondarySequence?: number;
  /** New format: entries read before the first invalid one. */
  entries?: number;
  /** Whether Windows would replay something from this log into the primary file (only ever for a dirty primary). */
  pending: boolean;
  /** New format: entries with a sequence number at least the primary's (those Windows would apply). */
  pendingEntries?: number;
}

const SECTOR = 512;
const ENTRY_HEADER = 40;

export async function summariseLog(log: TransactionLogInput, primary: BaseBlock, primaryDirty: boolean): Promise<TransactionLogInfo> {
  const read = (offset: number, length: number): Promise<Buffer> =>
    Buffer.isBuffer(log.data) ? Promise.resolve(log.data.subarray(offset, offset + length)) : (log.data as BlockSource).read(offset, length);
  const size = Buffer.isBuffer(log.data) ? log.data.length : (log.data as BlockSource).size;
  const info: TransactionLogInfo = { name: log.name, size, format: 'unknown', pending: false };
  if (size === 0) return { ...info, format: 'empty' };
  if (size < SECTOR) return { ...info, problem: `${size} bytes, less than a log's base block` };
  const head = Buffer.alloc(SECTOR);
  (await read(0, SECTOR)).copy(head);
  if (head.toString('latin1', 0, 4) !== REGF_SIGNATURE) return { ...info, problem: 'no "regf" signature' };
  const fileType = head.readUInt32LE(BASE_BLOCK.fileType);
  info.primarySequence = head.readUInt32LE(BASE_BLOCK.primarySequence);
  info.secondarySequence = head.readUInt32LE(BASE_BLOCK.secondarySequence);
  const checksumOk = baseBlockChecksum(head) === head.readUInt32LE(BASE_BLOCK.checksum);
  if (fileType === FILE_TYPE.log || fileType === FILE_TYPE.logAlternate) {
    info.format = 'old';
    if (!checksumOk) return { ...info, problem: 'its base block checksum does not match' };
    if (info.primarySequence !== info.secondarySequence) return { ...info, problem: 'it was not completely written (its sequence numbers differ)' };
    info.pending = primaryDirty && readFiletime(head, BASE_BLOCK.lastWritten) === primary.lastWritten;
    return info;
  }
  if (fileType !== FILE_TYPE.logNew) return { ...info, problem: `file type ${fileType} is not a transaction log` };
  info.format = 'new';
  if (!checksumOk) info.problem = 'its base block checksum does not match';
  let entries = 0;
  let pendingEntries = 0;
  // Each entry starts on a sector boundary; its size is a multiple of 512 and at least its header.
  for (let offset = SECTOR; offset + ENTRY_HEADER <= size; ) {
    const entry = await read(offset, ENTRY_HEADER);
    if (entry.toString('latin1', 0, 4) !== 'HvLE') break;
    const entrySize = entry.readUInt32LE(4);
    if (entrySize < ENTRY_HEADER || entrySize % SECTOR !== 0 || offset + entrySize > size) break;
    entries++;
    if (entry.readUInt32LE(12) >= primary.primarySequence) pendingEntries++;
    offset += entrySize;
  }
  info.entries = entries;
  info.pendingEntries = pendingEntries;
  info.pending = primaryDirty && pendingEntries > 0;
  return info;
}
