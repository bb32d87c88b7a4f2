/**
 * The log records between the tail and the head, in order, as recovery
 * reads them (xlog_do_recovery_pass): each record is a header (plus, for
 * big v2 records, extension headers), then h_len bytes of operations whose
 * first word in every 512-byte block was overwritten by the cycle number on
 * write; the header keeps the original words (h_cycle_data) and they are
 * put back (xlog_unpack_data). On v5 the record's CRC covers the header, the
 * extension headers and the packed data. Records may wrap around the end of
 * the log.
 */
import { crc32c } from '../crc32c.ts';
import { VERSION, XLOG_HEADER_CYCLE_SIZE, XLOG_HEADER_MAGIC_NUM, XLOG_REC, XLOG_VERSION_1, XLOG_VERSION_2 } from './layout.ts';
import type { XfsVolume } from './volume.ts';

const BBSIZE = 512;
/** sizeof(struct xlog_rec_header): the fields end at 324, padded to 8. */
const REC_HEADER_SIZE = 328;
/** Extension header: xh_cycle and 64 saved cycle words. */
const EXT_HEADER_SIZE = 4 + (XLOG_HEADER_CYCLE_SIZE / BBSIZE) * 4;
/** XLOG_MAX_RECORD_BSIZE: the largest record payload. */
const MAX_RECORD_BYTES = 256 * 1024;
const ZERO4 = Buffer.alloc(4);

export interface LogRecord {
  /** This record's LSN (cycle << 32 | block). */
  lsn: bigint;
  /** First block of the record in the log. */
  block: number;
  numLogops: number;
  /** The operations, unpacked. */
  data: Buffer;
}

export class LogFormatError extends Error {}

/** Reads whole log regions (which may wrap) from the device. */
export class LogDevice {
  readonly logBBs: number;
  private readonly start: number;
  bytesRead = 0;

  constructor(
    private readonly vol: XfsVolume,
    startLinear: number,
    private readonly maxBytes: number,
  ) {
    this.logBBs = vol.sb.sb_logblocks * vol.bbPerBlock;
    this.start = startLinear * vol.blockSize;
  }

  /** `count` basic blocks from `bb`, wrapping around the end of the log. */
  async read(bb: number, count: number): Promise<Buffer> {
    this.bytesRead += count * BBSIZE;
    if (this.bytesRead > this.maxBytes) throw new LogFormatError(`the active part of the log is larger than the ${this.maxBytes}-byte replay limit`);
    bb %= this.logBBs;
    if (bb + count <= this.logBBs) return this.vol.readBytes(this.start + bb * BBSIZE, count * BBSIZE);
    const first = this.logBBs - bb;
    return Buffer.concat([await this.vol.readBytes(this.start + bb * BBSIZE, first * BBSIZE), await this.vol.readBytes(this.start, (count - first) * BBSIZE)]);
  }
}

/**
 * xlog_cksum: CRC32C of the header (its CRC field as zeros), then of as many
 * extension headers as the payload needs (not as the record was sized), then
 * of the packed payload.
 */
export function recordChecksum(header: Buffer, extHeaders: Buffer, payload: Buffer): number {
  let c = crc32c(0xffffffff, header, 0, XLOG_REC.h_crc);
  c = crc32c(c, ZERO4);
  c = crc32c(c, header, XLOG_REC.h_crc + 4, REC_HEADER_SIZE);
  const used = Math.ceil(payload.length / XLOG_HEADER_CYCLE_SIZE) - 1;
  for (let i = 0; i < used && (i + 1) * BBSIZE <= extHeaders.length; i++) c = crc32c(c, extHeaders, i * BBSIZE, i * BBSIZE + EXT_HEADER_SIZE);
  c = crc32c(c, payload);
  return ~c >>> 0;
}

export interface RecordScan {
  records: LogRecord[];
  /** A record near the head whose checksum failed: a torn write, where recovery stops as the kernel's does. */
  tornAt?: number;
}

/**
 * Every record from `tailBlk` up to `headBlk`. A bad checksum ends the scan:
 * the kernel takes a bad record among the last few before the head for a
 * torn write and recovers up to it; anywhere else it is corruption.
 */
export async function readLogRecords(vol: XfsVolume, dev: LogDevice, tailBlk: number, headBlk: number): Promise<RecordScan> {
  const logV2 = vol.sb.version === 5 || (vol.sb.sb_versionnum & VERSION.LOGV2BIT) !== 0;
  const records: LogRecord[] = [];
  let blk = tailBlk;
  const distance = (from: number) => (headBlk - from + dev.logBBs) % dev.logBBs;
  let remaining = distance(blk);
  while (remaining > 0) {
    const hdr = await dev.read(blk, 1);
    const where = `log record at block ${blk}`;
    if (hdr.readUInt32BE(XLOG_REC.h_magicno) !== XLOG_HEADER_MAGIC_NUM) throw new LogFormatError(`${where} has no record header`);
    const version = hdr.readUInt32BE(XLOG_REC.h_version);
    if (version !== XLOG_VERSION_1 && version !== XLOG_VERSION_2) throw new LogFormatError(`${where} has version ${version}`);
    const len = hdr.readUInt32BE(XLOG_REC.h_len);
    if (len <= 0 || len > MAX_RECORD_BYTES || len % 4) throw new LogFormatError(`${where} claims ${len} bytes`);
    const size = hdr.readUInt32BE(XLOG_REC.h_size);
    const hblks = logV2 && version & XLOG_VERSION_2 && size > XLOG_HEADER_CYCLE_SIZE ? Math.ceil(size / XLOG_HEADER_CYCLE_SIZE) : 1;
    const dataBBs = Math.ceil(len / BBSIZE);
    if (hblks + dataBBs > remaining) throw new LogFormatError(`${where} runs past the head of the log`);
    const ext = hblks > 1 ? await dev.read(blk + 1, hblks - 1) : Buffer.alloc(0);
    const packed = await dev.read(blk + hblks, dataBBs);
    if (vol.sb.hasCrc) {
      const stored = hdr.readUInt32LE(XLOG_REC.h_crc);
      if (stored !== recordChecksum(hdr, ext, packed.subarray(0, len))) return { records, tornAt: blk };
    }
    // Put back the words the cycle stamps replaced.
    const data = Buffer.from(packed.subarray(0, len));
    for (let i = 0; i < dataBBs; i++) {
      const perHeader = XLOG_HEADER_CYCLE_SIZE / BBSIZE;
      const word = i < perHeader ? hdr.readUInt32BE(XLOG_REC.h_cycle_data + 4 * i) : ext.readUInt32BE((Math.floor(i / perHeader) - 1) * BBSIZE + 4 + 4 * (i % perHeader));
      if (i * BBSIZE + 4 <= data.length) data.writeUInt32BE(word, i * BBSIZE);
    }
    records.push({ lsn: hdr.readBigUInt64BE(XLOG_REC.h_lsn), block: blk, numLogops: hdr.readUInt32BE(XLOG_REC.h_num_logops), data });
    blk = (blk + hblks + dataBBs) % dev.logBBs;
    remaining -= hblks + dataBBs;
  }
  return { records };
}
