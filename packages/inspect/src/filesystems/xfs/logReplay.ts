/**
 * Log recovery in memory, as mount does it (xlog_recover): the records from
 * the tail to the head are assembled into transactions; a first pass
 * collects the buffers that were freed (cancel records), a second replays,
 * in log order, the logged ranges of every buffer that was not freed (only
 * when, on v5, the block on disk is older than the transaction), the logged
 * inode cores and forks (converted from the writer's byte order to the disk
 * format), and the inode chunks created by icreate items. Everything goes
 * into a ReplayedSource over the image; nothing is written. What mount does
 * after replay and guestlens does not model is reported: intents the log
 * started and did not finish (mount finishes them) and inodes left on the
 * unlinked lists (mount frees them).
 */
import { readAgi } from './allocationGroup.ts';
import { xfsChecksum } from './checksum.ts';
import { XfsUnsupportedError } from './errors.ts';
import {
  DINODE,
  DINODE_CORE_V2,
  DINODE_CORE_V3,
  DIFLAG2,
  XFS_DINODE_MAGIC,
  XFS_INODES_PER_CHUNK,
  NULLAGINO,
} from './layout.ts';
import { LogDevice, LogFormatError, readLogRecords } from './logRecords.ts';
import { assembleTransactions, type LogItem, type LogTransaction } from './logTransactions.ts';
import type { LogState } from './log.ts';
import { ReplayedSource } from './replayedSource.ts';
import { XfsVolume } from './volume.ts';

const BB = 512;
const LI = {
  EFI: 0x1236,
  EFD: 0x1237,
  IUNLINK: 0x1238,
  INODE: 0x123b,
  BUF: 0x123c,
  DQUOT: 0x123d,
  QUOTAOFF: 0x123e,
  ICREATE: 0x123f,
  RUI: 0x1240,
  RUD: 0x1241,
  CUI: 0x1242,
  CUD: 0x1243,
  BUI: 0x1244,
  BUD: 0x1245,
  ATTRI: 0x1246,
  ATTRD: 0x1247,
  XMI: 0x1248,
  XMD: 0x1249,
} as const;
const INTENT_NAMES: Record<number, string> = {
  [LI.EFI]: 'extent free',
  [LI.RUI]: 'reverse mapping',
  [LI.CUI]: 'reference count',
  [LI.BUI]: 'block mapping',
  [LI.ATTRI]: 'extended attribute',
  [LI.XMI]: 'mapping exchange',
};
const DONE_OF: Record<number, number> = { [LI.EFD]: LI.EFI, [LI.RUD]: LI.RUI, [LI.CUD]: LI.CUI, [LI.BUD]: LI.BUI, [LI.ATTRD]: LI.ATTRI, [LI.XMD]: LI.XMI };

// Buffer log format flags.
const BLF_INODE_BUF = 1 << 0;
const BLF_CANCEL = 1 << 1;
const BLF_DQUOT_BUFS = (1 << 2) | (1 << 3) | (1 << 4);
const BLF_CHUNK = 128;

// Inode log format fields.
const ILOG = {
  CORE: 0x001,
  DDATA: 0x002,
  DEXT: 0x004,
  DBROOT: 0x008,
  DEV: 0x010,
  ADATA: 0x040,
  AEXT: 0x080,
  ABROOT: 0x100,
  DOWNER: 0x200,
  AOWNER: 0x400,
} as const;
const ILOG_DFORK = ILOG.DDATA | ILOG.DEXT | ILOG.DBROOT;
const ILOG_AFORK = ILOG.ADATA | ILOG.AEXT | ILOG.ABROOT;
const INODE_LOG_FORMAT_64 = 56;
const INODE_LOG_FORMAT_32 = 52;
const DI_MAX_FLUSH = 0xffff;
/** No XFS buffer is larger than a 64 KiB directory block: twice that bounds what a logged buffer may claim. */
const MAX_BUFFER_BBS = (2 * 65536) / 512;

export interface ReplayOutcome {
  source: ReplayedSource;
  transactions: number;
  buffers: number;
  inodes: number;
  icreates: number;
  cancelledBuffers: number;
  /** Where replay stopped at a torn record near the head, as the kernel's does. */
  tornAt?: number;
  /** Why the replayed view is not what mount shows (mount-time work not modelled). */
  inexact: string[];
}

function key(blkno: bigint, len: number): string {
  return `${blkno}:${len}`;
}

/** Where a v5 metadata block keeps its LSN and UUID, by its magic (xlog_recover_get_buf_lsn); undefined: replay it regardless. */
function lsnLocation(buf: Buffer): { lsn: number; uuid: number; sb?: boolean } | undefined {
  if (buf.length < 8) return undefined;
  switch (buf.readUInt32BE(0)) {
    case 0x41423342: // AB3B
    case 0x41423343: // AB3C
    case 0x524d4233: // RMB3
    case 0x52334643: // R3FC
    case 0x46494233: // FIB3
    case 0x49414233: // IAB3
      return { lsn: 24, uuid: 32 };
    case 0x424d4133: // BMA3
      return { lsn: 32, uuid: 40 };
    case 0x58414746: // XAGF
      return { lsn: 208, uuid: 64 };
    case 0x5841464c: // XAFL
      return { lsn: 24, uuid: 8 };
    case 0x58414749: // XAGI
      return { lsn: 320, uuid: 296 };
    case 0x58534c4d: // XSLM
      return { lsn: 48, uuid: 16 };
    case 0x58444233: // XDB3
    case 0x58444433: // XDD3
    case 0x58444633: // XDF3
      return { lsn: 16, uuid: 24 };
    case 0x5841524d: // XARM: remote attribute blocks are written directly, never ordered by LSN
      return undefined;
    case 0x58465342: // XFSB
      return { lsn: 240, uuid: 32, sb: true };
    default:
      break;
  }
  if (buf.length >= 48) {
    switch (buf.readUInt16BE(8)) {
      case 0x3ebe:
      case 0x3bee:
      case 0x3df1:
      case 0x3dff:
        return { lsn: 24, uuid: 32 };
      default:
        break;
    }
  }
  if (buf.readUInt16BE(0) === XFS_DINODE_MAGIC && buf.length >= 176) return { lsn: DINODE.di_lsn, uuid: DINODE.di_uuid };
  return undefined;
}

class Replayer {
  readonly source: ReplayedSource;
  private readonly cancels = new Map<string, number>();
  private readonly intents = new Map<bigint, number>();
  /** Buffers replayed since the last change of transaction LSN, with the LSN their write would stamp. */
  private pendingStamps = new Map<number, { len: number; lsn: bigint }>();
  private lastLsn: bigint | undefined;
  readonly counts = { buffers: 0, inodes: 0, icreates: 0, cancelled: 0 };
  readonly inexact: string[] = [];

  constructor(
    private readonly vol: XfsVolume,
    private readonly maxOverlayBytes: number,
  ) {
    this.source = new ReplayedSource(vol.source);
  }

  private get v5(): boolean {
    return this.vol.sb.hasCrc;
  }

  private async readDaddr(daddr: bigint, len: number, what: string): Promise<Buffer> {
    const totalBBs = BigInt(this.vol.sb.sb_dblocks) * BigInt(this.vol.bbPerBlock);
    if (daddr < 0n || len <= 0 || daddr + BigInt(len) > totalBBs) throw new LogFormatError(`${what} at disk address ${daddr} (${len} sectors) lies outside the filesystem`);
    if (len > MAX_BUFFER_BBS) throw new LogFormatError(`${what} of ${len} sectors is larger than any XFS buffer`);
    if ((this.source.replayedBlocks + len) * BB > this.maxOverlayBytes) throw new LogFormatError(`the log rewrites more than ${this.maxOverlayBytes} bytes of the filesystem, over the replay limit`);
    return this.source.read(Number(daddr) * BB, len * BB);
  }

  pass1(trans: LogTransaction): void {
    for (const item of trans.items) {
      if (item.type !== LI.BUF) continue;
      const f = item.regions[0];
      if (f.length < 20) throw new LogFormatError('a buffer log item is too short');
      if (f.readUInt16LE(4) & BLF_CANCEL) {
        const k = key(f.readBigInt64LE(8), f.readUInt16LE(6));
        this.cancels.set(k, (this.cancels.get(k) ?? 0) + 1);
      }
    }
  }

  private isCancelled(blkno: bigint, len: number): boolean {
    return this.cancels.has(key(blkno, len));
  }

  private putCancelled(blkno: bigint, len: number): boolean {
    const k = key(blkno, len);
    const n = this.cancels.get(k);
    if (n === undefined) return false;
    if (n <= 1) this.cancels.delete(k);
    else this.cancels.set(k, n - 1);
    return true;
  }

  /** Buffers are written (and their LSN stamped) whenever the transaction LSN changes (xlog_recover_process_ophdr). */
  private flush(): void {
    // The stamp only matters to later LSN comparisons (CRCs of replayed blocks are not checked).
    for (const [daddr, { len, lsn }] of this.pendingStamps) this.stampLsn(daddr, len, lsn);
    this.pendingStamps.clear();
  }

  private stampLsn(daddr: number, len: number, lsn: bigint): void {
    const buf = this.source.peek(daddr, len);
    if (!buf) return;
    const loc = lsnLocation(buf);
    if (!loc || buf.readUInt16BE(0) === XFS_DINODE_MAGIC) return;
    buf.writeBigUInt64BE(lsn, loc.lsn);
    this.source.write(daddr, buf);
  }

  async pass2(trans: LogTransaction): Promise<void> {
    if (this.lastLsn !== undefined && trans.lsn !== this.lastLsn) this.flush();
    this.lastLsn = trans.lsn;
    for (const item of reorder(trans.items)) {
      switch (item.type) {
        case LI.BUF:
          await this.buffer(item, trans.lsn);
          break;
        case LI.INODE:
          await this.inode(item, trans.lsn);
          break;
        case LI.ICREATE:
          await this.icreate(item);
          break;
        case LI.EFI:
        case LI.RUI:
        case LI.CUI:
        case LI.BUI:
        case LI.ATTRI:
        case LI.XMI:
          if (item.regions[0].length < 16) throw new LogFormatError('an intent log item is too short');
          this.intents.set(item.regions[0].readBigUInt64LE(8), item.type);
          break;
        case LI.EFD:
        case LI.RUD:
        case LI.CUD:
        case LI.BUD:
        case LI.ATTRD:
        case LI.XMD:
          if (item.regions[0].length < 16) throw new LogFormatError('an intent-done log item is too short');
          if (this.intents.get(item.regions[0].readBigUInt64LE(8)) === DONE_OF[item.type]) this.intents.delete(item.regions[0].readBigUInt64LE(8));
          break;
        case LI.DQUOT:
        case LI.QUOTAOFF:
        case LI.IUNLINK:
          // Quota records and in-memory-only items change nothing a reader sees.
          break;
        default:
          throw new LogFormatError(`a log item of unknown type 0x${item.type.toString(16)}`);
      }
    }
  }

  finish(): void {
    this.flush();
    const open = new Map<string, number>();
    for (const type of this.intents.values()) open.set(INTENT_NAMES[type], (open.get(INTENT_NAMES[type]) ?? 0) + 1);
    if (open.size) {
      this.inexact.push(`the log holds unfinished ${[...open].map(([n, c]) => `${n} (${c})`).join(', ')} intents, which mount finishes and guestlens does not`);
    }
  }

  private async buffer(item: LogItem, lsn: bigint): Promise<void> {
    const f = item.regions[0];
    const flags = f.readUInt16LE(4);
    const len = f.readUInt16LE(6);
    const blkno = f.readBigInt64LE(8);
    const mapSize = f.readUInt32LE(16);
    if (flags & BLF_CANCEL) {
      if (this.putCancelled(blkno, len)) this.counts.cancelled++;
      return;
    }
    if (this.isCancelled(blkno, len)) {
      this.counts.cancelled++;
      return;
    }
    if (flags & BLF_DQUOT_BUFS) return;
    if (20 + mapSize * 4 > f.length) throw new LogFormatError('a buffer log item\'s dirty map runs past its end');
    const buf = Buffer.from(await this.readDaddr(blkno, len, 'a logged buffer'));
    if (this.v5) {
      const loc = lsnLocation(buf);
      if (loc && buf.subarray(loc.uuid, loc.uuid + 16).equals(loc.sb ? this.vol.sb.sb_uuid : this.vol.sb.metaUuid)) {
        const ondisk = buf.readBigUInt64BE(loc.lsn);
        if (ondisk !== 0n && ondisk !== 0xffffffffffffffffn && ondisk >= lsn) return;
      }
    }
    const bits = (n: number) => (f.readUInt32LE(20 + 4 * Math.floor(n / 32)) >>> n % 32) & 1;
    const nbits = mapSize * 32;
    let region = 1;
    const unlinkedOnly = (flags & BLF_INODE_BUF) !== 0;
    for (let bit = 0; bit < nbits; ) {
      if (!bits(bit)) {
        bit++;
        continue;
      }
      let run = 1;
      while (bit + run < nbits && bits(bit + run)) run++;
      const data = item.regions[region];
      if (!data) throw new LogFormatError('a buffer log item has fewer regions than its dirty map');
      run = Math.min(run, Math.floor(data.length / BLF_CHUNK));
      if (run === 0) throw new LogFormatError('a buffer log item region is shorter than a chunk');
      const at = bit * BLF_CHUNK;
      if (at + run * BLF_CHUNK > buf.length) throw new LogFormatError('a buffer log item writes past its buffer');
      if (unlinkedOnly) this.unlinkedPointers(buf, at, data.subarray(0, run * BLF_CHUNK));
      else data.copy(buf, at, 0, run * BLF_CHUNK);
      region++;
      bit += run;
    }
    this.source.write(Number(blkno), buf);
    this.counts.buffers++;
    if (this.v5 && !unlinkedOnly) this.pendingStamps.set(Number(blkno), { len, lsn });
  }

  /** xlog_recover_do_inode_buffer: of a logged inode buffer only the di_next_unlinked pointers are replayed. */
  private unlinkedPointers(buf: Buffer, at: number, data: Buffer): void {
    const isize = this.vol.sb.sb_inodesize;
    for (let i = 0; i * isize < buf.length; i++) {
      const field = i * isize + DINODE.di_next_unlinked;
      if (field < at || field + 4 > at + data.length) continue;
      const value = data.readUInt32BE(field - at);
      if (value === 0) throw new LogFormatError('a logged inode buffer has a zero unlinked pointer');
      buf.writeUInt32BE(value, field);
      if (this.v5 && buf.readUInt16BE(i * isize) === XFS_DINODE_MAGIC) this.restampInode(buf, i * isize);
    }
  }

  private restampInode(buf: Buffer, at: number): void {
    const isize = this.vol.sb.sb_inodesize;
    const inode = buf.subarray(at, at + isize);
    inode.writeUInt32LE(xfsChecksum(inode, DINODE.di_crc), DINODE.di_crc);
  }

  private async inode(item: LogItem, lsn: bigint): Promise<void> {
    const f = item.regions[0];
    let fields: number;
    let asize: number;
    let dsize: number;
    let rdev: number;
    let blkno: bigint;
    let len: number;
    let boffset: number;
    let size: number;
    if (f.length === INODE_LOG_FORMAT_64) {
      size = f.readUInt16LE(2);
      fields = f.readUInt32LE(4);
      asize = f.readUInt16LE(8);
      dsize = f.readUInt16LE(10);
      rdev = f.readUInt32LE(24);
      blkno = f.readBigInt64LE(40);
      len = f.readInt32LE(48);
      boffset = f.readInt32LE(52);
    } else if (f.length === INODE_LOG_FORMAT_32) {
      size = f.readUInt16LE(2);
      fields = f.readUInt32LE(4);
      asize = f.readUInt16LE(8);
      dsize = f.readUInt16LE(10);
      rdev = f.readUInt32LE(20);
      blkno = f.readBigInt64LE(36);
      len = f.readInt32LE(44);
      boffset = f.readInt32LE(48);
    } else {
      throw new LogFormatError(`an inode log item of ${f.length} bytes`);
    }
    void asize;
    void dsize;
    if (this.isCancelled(blkno, len)) {
      this.counts.cancelled++;
      return;
    }
    if (fields & (ILOG.DOWNER | ILOG.AOWNER)) this.note('the log changes the owner of an extent map (an extent swap), which guestlens does not replay');
    const buf = Buffer.from(await this.readDaddr(blkno, len, 'a logged inode'));
    const isize = this.vol.sb.sb_inodesize;
    if (boffset < 0 || boffset + isize > buf.length) throw new LogFormatError('a logged inode lies outside its buffer');
    const dip = buf.subarray(boffset, boffset + isize);
    if (dip.readUInt16BE(DINODE.di_magic) !== XFS_DINODE_MAGIC) throw new LogFormatError(`the inode at disk address ${blkno} + ${boffset} has no inode magic`);
    const ld = item.regions[1];
    if (!ld || ld.length < DINODE_CORE_V2 - 4) throw new LogFormatError('an inode log item has no inode core');
    if (ld.readUInt16LE(0) !== XFS_DINODE_MAGIC) {
      if (ld.readUInt16BE(0) === XFS_DINODE_MAGIC) throw new XfsUnsupportedError(this.vol.image, 'a log written by a big-endian machine');
      throw new LogFormatError('a logged inode core has no inode magic');
    }
    const v3 = dip[DINODE.di_version] >= 3;
    if (v3) {
      const ondisk = dip.readBigUInt64BE(DINODE.di_lsn);
      if (ondisk !== 0n && ondisk !== 0xffffffffffffffffn && ondisk > lsn) return;
    } else {
      const logFlush = ld.readUInt16LE(30);
      const diskFlush = dip.readUInt16BE(30);
      if (logFlush < diskFlush && !(diskFlush === DI_MAX_FLUSH && logFlush < DI_MAX_FLUSH >> 1)) return;
    }
    const isizeLog = this.vol.sb.version === 5 ? DINODE_CORE_V3 : 96;
    if (ld.length > isizeLog) throw new LogFormatError(`a logged inode core of ${ld.length} bytes`);
    logDinodeToDisk(ld, dip, lsn, this.vol.sb.version === 5);
    if (this.vol.sb.version !== 5) dip.writeUInt16BE(0, 30); // recovery resets the flush counter
    const core = this.vol.sb.version === 5 ? DINODE_CORE_V3 : DINODE_CORE_V2;
    const forkoff = dip[DINODE.di_forkoff] * 8;
    const litino = isize - core;
    const dataSize = forkoff ? forkoff : litino;
    if (forkoff > litino) throw new LogFormatError('a logged inode has its attribute fork past the end');
    if (fields & ILOG.DEV) dip.writeUInt32BE(rdev >>> 0, core);
    let next = 2;
    if (size > 2) {
      if (fields & ILOG_DFORK) {
        const src = item.regions[next++];
        if (!src) throw new LogFormatError('an inode log item lacks its data fork');
        if (fields & ILOG.DBROOT) bmbtRootToBmdr(this.vol, src, dip.subarray(core, core + dataSize));
        else {
          if (src.length > dataSize) throw new LogFormatError('a logged data fork is larger than the fork');
          src.copy(dip, core);
        }
      }
      if (fields & ILOG_AFORK) {
        const src = item.regions[next++];
        if (!src) throw new LogFormatError('an inode log item lacks its attribute fork');
        const attr = dip.subarray(core + dataSize, core + litino);
        if (fields & ILOG.ABROOT) bmbtRootToBmdr(this.vol, src, attr);
        else {
          if (src.length > attr.length) throw new LogFormatError('a logged attribute fork is larger than the fork');
          src.copy(attr, 0);
        }
      }
    }
    if (v3) this.restampInode(buf, boffset);
    this.source.write(Number(blkno), buf);
    this.counts.inodes++;
  }

  /** xlog_recover_icreate_commit_pass2: fresh (free) inodes over a new inode chunk. */
  private async icreate(item: LogItem): Promise<void> {
    const f = item.regions[0];
    if (f.length < 28) throw new LogFormatError('an icreate log item is too short');
    const agno = f.readUInt32BE(4);
    const agbno = f.readUInt32BE(8);
    const count = f.readUInt32BE(12);
    const isize = f.readUInt32BE(16);
    const length = f.readUInt32BE(20);
    const gen = f.readUInt32BE(24);
    const sb = this.vol.sb;
    if (agno >= sb.sb_agcount || isize !== sb.sb_inodesize || count % XFS_INODES_PER_CHUNK !== 0 || length * sb.sb_inopblock !== count || this.vol.agbToLinear(agno, agbno + length - 1) === undefined) {
      throw new LogFormatError(`an icreate log item for ${count} inodes at AG ${agno} block ${agbno} does not fit the filesystem`);
    }
    const linear = this.vol.agbToLinear(agno, agbno)!;
    const daddr = linear * this.vol.bbPerBlock;
    // Inode cluster buffers are cancelled one by one; replay only when none is.
    const clusterBlocks = Math.max(1, Math.min(length, Math.floor(8192 * (sb.version === 5 ? sb.sb_inodesize / 256 : 1) / sb.sb_blocksize)));
    for (let b = 0; b < length; b += clusterBlocks) if (this.isCancelled(BigInt(daddr + b * this.vol.bbPerBlock), clusterBlocks * this.vol.bbPerBlock)) return;
    const buf = Buffer.alloc(length * sb.sb_blocksize);
    const firstAgino = agbno * sb.sb_inopblock;
    for (let i = 0; i < count; i++) {
      const at = i * isize;
      buf.writeUInt16BE(XFS_DINODE_MAGIC, at + DINODE.di_magic);
      buf[at + DINODE.di_version] = sb.version === 5 ? 3 : 2;
      buf.writeUInt32BE(gen, at + DINODE.di_gen);
      buf.writeUInt32BE(NULLAGINO, at + DINODE.di_next_unlinked);
      if (sb.version === 5) {
        buf.writeBigUInt64BE(BigInt(agno) * 2n ** BigInt(sb.aginoLog) + BigInt(firstAgino + i), at + DINODE.di_ino);
        sb.metaUuid.copy(buf, at + DINODE.di_uuid);
        this.restampInode(buf, at);
      }
    }
    this.source.write(daddr, buf);
    this.counts.icreates++;
  }

  private note(reason: string): void {
    if (!this.inexact.includes(reason)) this.inexact.push(reason);
  }
}

/** xlog_recover_reorder_trans: buffers first, then other items, inode buffers, inodes, cancelled buffers. */
function reorder(items: readonly LogItem[]): LogItem[] {
  const buffers: LogItem[] = [];
  const others: LogItem[] = [];
  const inodeBuffers: LogItem[] = [];
  const inodes: LogItem[] = [];
  const cancels: LogItem[] = [];
  for (const item of items) {
    if (item.type === LI.BUF) {
      const flags = item.regions[0].length >= 6 ? item.regions[0].readUInt16LE(4) : 0;
      if (flags & BLF_CANCEL) cancels.unshift(item);
      else if (flags & BLF_INODE_BUF) inodeBuffers.unshift(item);
      else buffers.push(item);
    } else if (item.type === LI.ICREATE) {
      buffers.push(item);
    } else if (item.type === LI.INODE) {
      inodes.push(item);
    } else {
      others.push(item);
    }
  }
  return [...buffers, ...others, ...inodeBuffers, ...inodes, ...cancels];
}

/** xfs_log_dinode_to_disk: the logged core (the writer's byte order, little-endian) into the on-disk one, keeping di_next_unlinked. */
function logDinodeToDisk(ld: Buffer, dip: Buffer, lsn: bigint, v5: boolean): void {
  const u16 = (o: number) => ld.readUInt16LE(o);
  const u32 = (o: number) => ld.readUInt32LE(o);
  const version = ld[DINODE.di_version];
  const flags2 = version === 3 && ld.length >= 128 ? ld.readBigUInt64LE(DINODE.di_flags2) : 0n;
  const bigtime = (flags2 & BigInt(DIFLAG2.BIGTIME)) !== 0n;
  const nrext64 = (flags2 & BigInt(DIFLAG2.NREXT64)) !== 0n;
  const ts = (o: number) => {
    if (bigtime) dip.writeBigUInt64BE(ld.readBigUInt64LE(o), o);
    else {
      dip.writeInt32BE(ld.readInt32LE(o), o);
      dip.writeInt32BE(ld.readInt32LE(o + 4), o + 4);
    }
  };
  dip.writeUInt16BE(u16(DINODE.di_magic), DINODE.di_magic);
  dip.writeUInt16BE(u16(DINODE.di_mode), DINODE.di_mode);
  dip[DINODE.di_version] = version;
  dip[DINODE.di_format] = ld[DINODE.di_format];
  dip.writeUInt16BE(0, DINODE.di_onlink);
  dip.writeUInt32BE(u32(DINODE.di_uid), DINODE.di_uid);
  dip.writeUInt32BE(u32(DINODE.di_gid), DINODE.di_gid);
  dip.writeUInt32BE(u32(DINODE.di_nlink), DINODE.di_nlink);
  dip.writeUInt16BE(u16(DINODE.di_projid_lo), DINODE.di_projid_lo);
  dip.writeUInt16BE(u16(DINODE.di_projid_hi), DINODE.di_projid_hi);
  ts(DINODE.di_atime);
  ts(DINODE.di_mtime);
  ts(DINODE.di_ctime);
  dip.writeBigUInt64BE(ld.readBigUInt64LE(DINODE.di_size), DINODE.di_size);
  dip.writeBigUInt64BE(ld.readBigUInt64LE(DINODE.di_nblocks), DINODE.di_nblocks);
  dip.writeUInt32BE(u32(DINODE.di_extsize), DINODE.di_extsize);
  dip[DINODE.di_forkoff] = ld[DINODE.di_forkoff];
  dip[DINODE.di_aformat] = ld[DINODE.di_aformat];
  dip.writeUInt32BE(u32(DINODE.di_dmevmask), DINODE.di_dmevmask);
  dip.writeUInt16BE(u16(DINODE.di_dmstate), DINODE.di_dmstate);
  dip.writeUInt16BE(u16(DINODE.di_flags), DINODE.di_flags);
  dip.writeUInt32BE(u32(DINODE.di_gen), DINODE.di_gen);
  if (version === 3 && v5) {
    dip.writeBigUInt64BE(ld.readBigUInt64LE(DINODE.di_changecount), DINODE.di_changecount);
    ts(DINODE.di_crtime);
    dip.writeBigUInt64BE(flags2, DINODE.di_flags2);
    dip.writeUInt32BE(u32(DINODE.di_cowextsize), DINODE.di_cowextsize);
    dip.writeBigUInt64BE(ld.readBigUInt64LE(DINODE.di_ino), DINODE.di_ino);
    dip.writeBigUInt64BE(lsn, DINODE.di_lsn);
    dip.fill(0, DINODE.di_cowextsize + 4, DINODE.di_crtime);
    ld.copy(dip, DINODE.di_uuid, DINODE.di_uuid, DINODE.di_uuid + 16);
    if (!nrext64) dip.writeBigUInt64BE(0n, DINODE.di_big_nextents);
  } else {
    dip.writeUInt16BE(u16(30), 30);
    dip.fill(0, 24, 30);
  }
  if (nrext64) {
    dip.writeBigUInt64BE(ld.readBigUInt64LE(DINODE.di_big_nextents), DINODE.di_big_nextents);
    dip.writeUInt32BE(u32(DINODE.di_nextents), DINODE.di_nextents);
    dip.writeUInt16BE(u16(DINODE.di_anextents), DINODE.di_anextents);
  } else {
    dip.writeUInt32BE(u32(DINODE.di_nextents), DINODE.di_nextents);
    dip.writeUInt16BE(u16(DINODE.di_anextents), DINODE.di_anextents);
  }
}

/**
 * xfs_bmbt_to_bmdr: a logged in-memory btree root (a long-form btree block
 * header, keys, then pointers placed for the logged length) into the
 * on-disk root (level, numrecs, keys, pointers placed for the fork size).
 */
function bmbtRootToBmdr(vol: XfsVolume, src: Buffer, fork: Buffer): void {
  const hdr = vol.sb.hasCrc ? 72 : 24;
  if (src.length < hdr) throw new LogFormatError('a logged btree root is shorter than its header');
  const level = src.readUInt16BE(4);
  const numrecs = src.readUInt16BE(6);
  const srcMax = Math.floor((src.length - hdr) / 16);
  const dstMax = Math.floor((fork.length - 4) / 16);
  if (level === 0 || numrecs > srcMax || numrecs > dstMax) throw new LogFormatError('a logged btree root does not fit its fork');
  fork.fill(0);
  fork.writeUInt16BE(level, 0);
  fork.writeUInt16BE(numrecs, 2);
  src.copy(fork, 4, hdr, hdr + numrecs * 8);
  src.copy(fork, 4 + dstMax * 8, hdr + srcMax * 8, hdr + srcMax * 8 + numrecs * 8);
}

export interface ReplayLimits {
  /** Bytes of log records read at most. */
  maxLogBytes: number;
}

/** Replay the log between tail and head into an in-memory view of the device. */
export async function replayLog(vol: XfsVolume, state: LogState, limits: ReplayLimits): Promise<ReplayOutcome> {
  const startLinear = vol.fsbToLinear(vol.sb.sb_logstart)!;
  const dev = new LogDevice(vol, startLinear, limits.maxLogBytes);
  const scan = await readLogRecords(vol, dev, state.tailBlk, state.headBlk);
  const replayer = new Replayer(vol, limits.maxLogBytes);
  if (scan.tornAt !== undefined) {
    // xlog_verify_head: a bad record among the last few (at most 8 in-core logs of 256 KiB) is a torn write; earlier, corruption.
    const distance = (state.headBlk - scan.tornAt + dev.logBBs) % dev.logBBs;
    if (distance > 8 * ((256 * 1024) / BB + 1)) replayer.inexact.push(`a log record at block ${scan.tornAt} fails its checksum, far from the head: the kernel would refuse to mount the filesystem`);
  }
  const transactions = assembleTransactions(scan.records, { maxBytes: limits.maxLogBytes });
  for (const t of transactions) replayer.pass1(t);
  for (const t of transactions) await replayer.pass2(t);
  replayer.finish();
  // Mount frees the inodes left on unlinked lists (deleted while still open) once recovery is done.
  const replayedVol = new XfsVolume(replayer.source, vol.sb, vol.retryable, vol.limits);
  let unlinked = 0;
  for (let agno = 0; agno < vol.sb.sb_agcount; agno++) unlinked += (await readAgi(replayedVol, agno)).agi_unlinked.length;
  if (unlinked) replayer.inexact.push(`${unlinked} unlinked-inode list(s) hold inodes deleted while open, which mount frees and guestlens does not model`);
  return {
    source: replayer.source,
    transactions: transactions.length,
    buffers: replayer.counts.buffers,
    inodes: replayer.counts.inodes,
    icreates: replayer.counts.icreates,
    cancelledBuffers: replayer.counts.cancelled,
    tornAt: scan.tornAt,
    inexact: replayer.inexact,
  };
}
