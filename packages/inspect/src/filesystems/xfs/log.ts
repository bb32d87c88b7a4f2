/**
 * Whether the internal log needs recovery, found the way mount finds it
 * (xlog_find_head, xlog_find_tail): every 512-byte block of the log starts
 * with the cycle number of the pass that wrote it, so a binary search for
 * the first block of the latest cycle finds the head, a bounded scan back
 * from there skips blocks of concurrent, unfinished writes and a partial
 * record, and the last record header before the head gives the tail. The
 * log is clean when that record is a lone unmount record ending at the head:
 * then head and tail meet. Anything else means the guest did not unmount
 * (a crash, or an image taken while mounted) and the kernel would replay
 * the log before showing the filesystem. Reads are a few dozen sectors for
 * a clean log, whatever its size.
 */
import { VERSION, XLOG_HEADER_CYCLE_SIZE, XLOG_HEADER_MAGIC_NUM, XLOG_OP_HEADER, XLOG_REC, XLOG_UNMOUNT_TRANS, XLOG_VERSION_2 } from './layout.ts';
import type { XfsVolume } from './volume.ts';

const BBSIZE = 512;
/** Blocks an unfinished set of in-core log writes may span (XLOG_TOTAL_REC_SHIFT) and one record (XLOG_REC_SHIFT), for v2 logs and v1 logs. */
const TOTAL_REC_BBS_V2 = (8 << 18) / BBSIZE;
const TOTAL_REC_BBS_V1 = (8 << 15) / BBSIZE;
const REC_BBS_V2 = (1 << 18) / BBSIZE;
const REC_BBS_V1 = (1 << 15) / BBSIZE;
/** Basic blocks read at once when scanning. */
const CHUNK_BBS = 128;

export interface LogState {
  /** The log needs no recovery. */
  clean: boolean;
  headBlk: number;
  tailBlk: number;
  /** The pass over the log the last record was written in (1 until the log first wraps). */
  cycle?: number;
  /** Why the state could not be determined (then clean is false). */
  problem?: string;
}

class LogReader {
  readonly logBBs: number;
  readonly start: number;
  private chunks = new Map<number, Buffer>();
  private reads = 0;

  constructor(
    private readonly vol: XfsVolume,
    startLinear: number,
  ) {
    this.logBBs = vol.sb.sb_logblocks * vol.bbPerBlock;
    this.start = startLinear * vol.blockSize;
  }

  private budget(): void {
    if (++this.reads > Math.max(64, this.vol.limits.maxLogScanBlocks / CHUNK_BBS)) throw new Error('log scan budget exceeded');
  }

  /** The 512-byte basic block `bb` of the log; scans read chunks ahead, a binary search reads single blocks. */
  async block(bb: number, sequential = true): Promise<Buffer> {
    const chunk = Math.floor(bb / CHUNK_BBS);
    const cached = this.chunks.get(chunk);
    if (cached) {
      const off = (bb - chunk * CHUNK_BBS) * BBSIZE;
      return cached.subarray(off, off + BBSIZE);
    }
    this.budget();
    if (!sequential) return this.vol.readBytes(this.start + bb * BBSIZE, BBSIZE);
    const first = chunk * CHUNK_BBS;
    const count = Math.min(CHUNK_BBS, this.logBBs - first);
    const buf = await this.vol.readBytes(this.start + first * BBSIZE, count * BBSIZE);
    if (this.chunks.size > 64) this.chunks.clear();
    this.chunks.set(chunk, buf);
    const off = (bb - first) * BBSIZE;
    return buf.subarray(off, off + BBSIZE);
  }

  /** xlog_get_cycle: a record header keeps its cycle in h_cycle; every other block starts with it. */
  async cycle(bb: number, sequential = true): Promise<number> {
    const b = await this.block(bb, sequential);
    return b.readUInt32BE(0) === XLOG_HEADER_MAGIC_NUM ? b.readUInt32BE(XLOG_REC.h_cycle) : b.readUInt32BE(0);
  }

  async isHeader(bb: number): Promise<boolean> {
    return (await this.block(bb)).readUInt32BE(0) === XLOG_HEADER_MAGIC_NUM;
  }
}

/** xlog_find_cycle_start: the first block in (first, last] with `cycle`, by binary search. */
async function findCycleStart(log: LogReader, first: number, last: number, cycle: number): Promise<number> {
  let lo = first;
  let hi = last;
  let mid = Math.floor((lo + hi) / 2);
  while (mid !== lo && mid !== hi) {
    if ((await log.cycle(mid, false)) === cycle) hi = mid;
    else lo = mid;
    mid = Math.floor((lo + hi) / 2);
  }
  return hi;
}

/** xlog_find_verify_cycle: the first block in [start, start + n) with `cycle`, or -1. */
async function findBlockWithCycle(log: LogReader, start: number, n: number, cycle: number): Promise<number> {
  for (let i = start; i < start + n; i++) if ((await log.cycle(i)) === cycle) return i;
  return -1;
}

/** Header blocks of a record: one, or one per 32 KiB of a large v2 iclog. */
function headerBlocks(hdr: Buffer, logV2: boolean): number {
  if (!logV2) return 1;
  const size = hdr.readUInt32BE(XLOG_REC.h_size);
  const version = hdr.readUInt32BE(XLOG_REC.h_version);
  if (version & XLOG_VERSION_2 && size > XLOG_HEADER_CYCLE_SIZE) return Math.ceil(size / XLOG_HEADER_CYCLE_SIZE);
  return 1;
}

/**
 * xlog_find_verify_log_record: back `last` up to the start of the last
 * record before it when that record is incomplete. Returns the new `last`,
 * or -1 when no header lies in [start, last).
 */
async function verifyLogRecord(log: LogReader, start: number, last: number, extra: number, logV2: boolean): Promise<number> {
  let i = last - 1;
  for (; i >= start; i--) if (await log.isHeader(i)) break;
  if (i < start) return -1;
  const hdr = await log.block(i);
  const len = hdr.readUInt32BE(XLOG_REC.h_len);
  const hblks = logV2 ? Math.max(1, Math.ceil(hdr.readUInt32BE(XLOG_REC.h_size) / XLOG_HEADER_CYCLE_SIZE)) : 1;
  if (last - i + extra !== Math.ceil(len / BBSIZE) + hblks) return i;
  return last;
}

/** xlog_find_zeroed: undefined when the log is written all through, else the first never-written block. */
async function findZeroed(log: LogReader, totalScan: number, logV2: boolean): Promise<number | undefined> {
  const firstCycle = await log.cycle(0, false);
  if (firstCycle === 0) return 0;
  const lastCycle = await log.cycle(log.logBBs - 1, false);
  if (lastCycle !== 0) return undefined;
  if (firstCycle !== 1) throw new Error('the log is inconsistent: its last block was never written but its first is not of cycle 1');
  let lastBlk = await findCycleStart(log, 0, log.logBBs - 1, 0);
  const scan = Math.min(totalScan, lastBlk);
  const start = lastBlk - scan;
  const found = await findBlockWithCycle(log, start, scan, 0);
  if (found !== -1) lastBlk = found;
  const backed = await verifyLogRecord(log, start, lastBlk, 0, logV2);
  if (backed === -1) throw new Error('no log record header before the first unwritten block');
  return backed;
}

async function findHead(log: LogReader, logV2: boolean): Promise<number> {
  const totalScan = logV2 ? TOTAL_REC_BBS_V2 : TOTAL_REC_BBS_V1;
  const recScan = logV2 ? REC_BBS_V2 : REC_BBS_V1;
  const zeroed = await findZeroed(log, totalScan, logV2);
  if (zeroed !== undefined) return zeroed;
  const n = log.logBBs;
  const firstHalf = await log.cycle(0, false);
  const lastHalf = await log.cycle(n - 1, false);
  let headBlk: number;
  let stopOn: number;
  if (firstHalf === lastHalf) {
    headBlk = n;
    stopOn = lastHalf - 1;
  } else {
    stopOn = lastHalf;
    headBlk = await findCycleStart(log, 0, n - 1, lastHalf);
  }
  if (headBlk >= totalScan) {
    const found = await findBlockWithCycle(log, headBlk - totalScan, totalScan, stopOn);
    if (found !== -1) headBlk = found;
  } else {
    // The end of the log, wrapping back from the head (never more of it than the log has).
    const start = Math.max(headBlk, n - (totalScan - headBlk));
    const found = await findBlockWithCycle(log, start, n - start, stopOn - 1);
    if (found !== -1) {
      headBlk = found;
    } else {
      const again = await findBlockWithCycle(log, 0, headBlk, stopOn);
      if (again !== -1) headBlk = again;
    }
  }
  if (headBlk >= recScan) {
    const backed = await verifyLogRecord(log, headBlk - recScan, headBlk, 0, logV2);
    if (backed === -1) throw new Error('no log record header before the head');
    headBlk = backed;
  } else {
    const backed = await verifyLogRecord(log, 0, headBlk, 0, logV2);
    if (backed === -1) {
      const start = Math.max(headBlk, n - (recScan - headBlk));
      const wrapped = await verifyLogRecord(log, start, n, headBlk, logV2);
      if (wrapped === -1) throw new Error('no log record header before the head');
      if (wrapped !== n) headBlk = wrapped;
    } else {
      headBlk = backed;
    }
  }
  return headBlk === n ? 0 : headBlk;
}

/** Inspect the internal log: clean, or needing recovery (or unreadable, with why). */
export async function inspectLog(vol: XfsVolume): Promise<LogState> {
  const sb = vol.sb;
  const startLinear = vol.fsbToLinear(sb.sb_logstart);
  if (startLinear === undefined || startLinear + sb.sb_logblocks > sb.sb_dblocks || sb.sb_logblocks === 0) {
    return { clean: false, headBlk: 0, tailBlk: 0, problem: `the superblock places the log at block ${sb.sb_logstart} (${sb.sb_logblocks} blocks), outside the filesystem` };
  }
  const logV2 = sb.version === 5 || (sb.sb_versionnum & VERSION.LOGV2BIT) !== 0;
  const log = new LogReader(vol, startLinear);
  try {
    const headBlk = await findHead(log, logV2);
    if (headBlk === 0 && (await log.cycle(0)) === 0) return { clean: true, headBlk: 0, tailBlk: 0 };
    // The last record header before the head (searching back, wrapping once).
    let rec = -1;
    for (let i = headBlk - 1; i >= 0; i--) if (await log.isHeader(i)) { rec = i; break; }
    if (rec < 0) {
      for (let i = log.logBBs - 1; i >= headBlk; i--) if (await log.isHeader(i)) { rec = i; break; }
    }
    if (rec < 0) return { clean: false, headBlk, tailBlk: 0, problem: 'the log holds no record header' };
    const hdr = Buffer.from(await log.block(rec));
    const uuid = hdr.subarray(XLOG_REC.h_fs_uuid, XLOG_REC.h_fs_uuid + 16);
    if (!uuid.every((b) => b === 0) && !uuid.equals(sb.sb_uuid)) return { clean: false, headBlk, tailBlk: 0, problem: 'the log belongs to another filesystem (its UUID differs)' };
    let tailBlk = Number(hdr.readBigUInt64BE(XLOG_REC.h_tail_lsn) & 0xffffffffn);
    const hblks = headerBlocks(hdr, logV2);
    const afterRecord = (rec + hblks + Math.ceil(hdr.readUInt32BE(XLOG_REC.h_len) / BBSIZE)) % log.logBBs;
    if (headBlk === afterRecord && hdr.readUInt32BE(XLOG_REC.h_num_logops) === 1) {
      const op = await log.block((rec + hblks) % log.logBBs);
      if (op[XLOG_OP_HEADER.oh_flags] & XLOG_UNMOUNT_TRANS) tailBlk = afterRecord;
    }
    return { clean: headBlk === tailBlk, headBlk, tailBlk, cycle: hdr.readUInt32BE(XLOG_REC.h_cycle) };
  } catch (err) {
    if (err instanceof Error && !('code' in err)) return { clean: false, headBlk: 0, tailBlk: 0, problem: `the log cannot be read: ${err.message}` };
    throw err;
  }
}
