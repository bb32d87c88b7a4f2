/**
 * Transactions out of log records, as recovery assembles them
 * (xlog_recover_process_data): every record holds operations, each an
 * operation header (transaction id, length, client, flags) and its bytes. A
 * transaction starts with a START operation, its first region is the
 * transaction header, then come the regions of its items (the first region
 * of an item is its log format structure, whose second 16-bit word says how
 * many regions the item has); a region may be split over operations
 * (CONTINUE/WAS_CONT). On COMMIT the transaction is complete. Operations of
 * transactions that started before the tail are ignored, as are those of the
 * unmount record. Item structures are in the byte order of the machine that
 * wrote the log, little-endian on every guest we meet.
 */
import { XLOG_OP_HEADER, XLOG_UNMOUNT_TRANS } from './layout.ts';
import { LogFormatError, type LogRecord } from './logRecords.ts';

const XFS_TRANSACTION = 0x69;
const XFS_LOG = 0xaa;
const XLOG_START_TRANS = 0x01;
const XLOG_COMMIT_TRANS = 0x02;
const XLOG_CONTINUE_TRANS = 0x04;
const XLOG_WAS_CONT_TRANS = 0x08;
const XLOG_END_TRANS = 0x10;
const XFS_TRANS_HEADER_MAGIC = 0x5452414e; // 'TRAN', written in host order
const TRANS_HEADER_SIZE = 16;
/** XLOG_MAX_REGIONS_IN_ITEM: a bound on regions per item. */
const MAX_REGIONS_IN_ITEM = (256 * 1024) / 128 / 2 + 1;

export interface LogItem {
  /** XFS_LI_* */
  type: number;
  regions: Buffer[];
}

export interface LogTransaction {
  tid: number;
  /** LSN of the record the transaction started in: what replay compares on-disk LSNs with. */
  lsn: bigint;
  items: LogItem[];
}

interface Building {
  tid: number;
  lsn: bigint;
  header: Buffer;
  items: { total: number; regions: Buffer[] }[];
}

/** Assemble the committed transactions of `records`, in commit order. */
export function assembleTransactions(records: readonly LogRecord[], limits: { maxBytes: number }): LogTransaction[] {
  const open = new Map<number, Building>();
  const committed: LogTransaction[] = [];
  let bytes = 0;
  for (const rec of records) {
    const d = rec.data;
    let off = 0;
    for (let n = 0; n < rec.numLogops && off < d.length; n++) {
      if (off + XLOG_OP_HEADER.size > d.length) throw new LogFormatError(`an operation header runs past the end of the log record at block ${rec.block}`);
      const len = d.readUInt32BE(off + XLOG_OP_HEADER.oh_len);
      const clientid = d[off + XLOG_OP_HEADER.oh_clientid];
      const flags = d[off + XLOG_OP_HEADER.oh_flags];
      const tidHere = d.readUInt32BE(off + XLOG_OP_HEADER.oh_tid);
      off += XLOG_OP_HEADER.size;
      if (off + len > d.length) throw new LogFormatError(`an operation of ${len} bytes runs past the end of the log record at block ${rec.block}`);
      const body = d.subarray(off, off + len);
      off += len;
      if (clientid !== XFS_TRANSACTION && clientid !== XFS_LOG) throw new LogFormatError(`an operation of unknown client 0x${clientid.toString(16)} in the log record at block ${rec.block}`);
      if (clientid === XFS_LOG) continue;
      let trans = open.get(tidHere);
      if (!trans) {
        // A transaction that began before the tail cannot be replayed; only a START opens one.
        if (flags & XLOG_START_TRANS) open.set(tidHere, { tid: tidHere, lsn: rec.lsn, header: Buffer.alloc(0), items: [] });
        continue;
      }
      let kind = flags & ~XLOG_END_TRANS;
      if (kind & XLOG_WAS_CONT_TRANS) kind &= ~XLOG_CONTINUE_TRANS;
      bytes += len;
      if (bytes > limits.maxBytes) throw new LogFormatError(`the log's transactions hold more than ${limits.maxBytes} bytes, the replay limit`);
      switch (kind) {
        case 0:
        case XLOG_CONTINUE_TRANS:
          addRegion(trans, body);
          break;
        case XLOG_WAS_CONT_TRANS:
          continueRegion(trans, body);
          break;
        case XLOG_COMMIT_TRANS:
          open.delete(tidHere);
          committed.push(finish(trans));
          break;
        case XLOG_UNMOUNT_TRANS:
          open.delete(tidHere);
          break;
        default:
          throw new LogFormatError(`an operation with flags 0x${flags.toString(16)} for transaction ${tidHere}`);
      }
    }
  }
  return committed;
}

/** xlog_recover_add_to_trans: the transaction header first, then regions item by item. */
function addRegion(trans: Building, body: Buffer): void {
  if (body.length === 0) return;
  if (trans.items.length === 0 && trans.header.length < TRANS_HEADER_SIZE) {
    if (trans.header.length === 0 && body.readUInt32LE(0) !== XFS_TRANS_HEADER_MAGIC && body.readUInt32BE(0) !== XFS_TRANS_HEADER_MAGIC) {
      throw new LogFormatError(`transaction ${trans.tid} does not start with a transaction header`);
    }
    if (body.length > TRANS_HEADER_SIZE) throw new LogFormatError(`transaction ${trans.tid} has a ${body.length}-byte header`);
    trans.header = Buffer.from(body);
    return;
  }
  let item = trans.items[trans.items.length - 1];
  if (!item || (item.total !== 0 && item.regions.length === item.total)) {
    item = { total: 0, regions: [] };
    trans.items.push(item);
  }
  if (item.total === 0) {
    if (body.length < 4) throw new LogFormatError(`transaction ${trans.tid} has an item of ${body.length} bytes`);
    const size = body.readUInt16LE(2);
    if (size === 0 || size > MAX_REGIONS_IN_ITEM) throw new LogFormatError(`transaction ${trans.tid} has an item of ${size} regions`);
    item.total = size;
  }
  if (item.regions.length >= item.total) throw new LogFormatError(`transaction ${trans.tid} has an item with more regions than it says`);
  item.regions.push(Buffer.from(body));
}

/** xlog_recover_add_to_cont_trans: the rest of a region split over operations. */
function continueRegion(trans: Building, body: Buffer): void {
  if (trans.items.length === 0) {
    trans.header = Buffer.concat([trans.header, body]).subarray(0, TRANS_HEADER_SIZE);
    return;
  }
  const item = trans.items[trans.items.length - 1];
  const last = item.regions.length - 1;
  if (last < 0) throw new LogFormatError(`transaction ${trans.tid} continues a region it never started`);
  item.regions[last] = Buffer.concat([item.regions[last], body]);
}

function finish(trans: Building): LogTransaction {
  const items: LogItem[] = [];
  for (const it of trans.items) {
    if (it.regions.length !== it.total) throw new LogFormatError(`transaction ${trans.tid} has an item with ${it.regions.length} of its ${it.total} regions`);
    items.push({ type: it.regions[0].readUInt16LE(0), regions: it.regions });
  }
  return { tid: trans.tid, lsn: trans.lsn, items };
}
