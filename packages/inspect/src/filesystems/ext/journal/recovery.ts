/**
 * jbd2 recovery, in memory: the kernel's three passes over the log.
 *  - scan: from s_start with s_sequence, follow descriptor/commit/revoke blocks
 *    while each header carries the expected sequence; a transaction counts only
 *    when its commit block is found (and, with csum v2/v3, checks out).
 *  - revoke: collect revoke records of committed transactions (block -> newest
 *    revoking sequence).
 *  - replay: for every tag of every committed transaction, in order, unless
 *    revoked by the same or a later transaction, the filesystem block's new
 *    content is that journal block (with the escaped magic restored). Tags
 *    whose v2/v3 data checksum fails are skipped, as the kernel skips them.
 * The result is a map from filesystem block to journal location; nothing is
 * written anywhere.
 */
import { crc32c, crc32cBe32 } from '../checksum.ts';
import { ExtChecksumError } from '../errors.ts';
import type { ExtVolume } from '../volume.ts';
import { BLOCK_TYPE, JBD2_MAGIC_NUMBER, tagBytes, type JournalSuperblock } from './journalSuperblock.ts';

const TAG_FLAG = { ESCAPE: 1, SAME_UUID: 2, DELETED: 4, LAST_TAG: 8 } as const;
const HEADER_SIZE = 12;

export interface ReplayTarget {
  /** Physical filesystem block holding the journal's copy. */
  journalPblk: number;
  /** The copy had its first 4 bytes replaced because they were the jbd2 magic. */
  escaped: boolean;
}

export interface RecoveryResult {
  /** Filesystem block -> its replayed content's location. */
  blocks: Map<number, ReplayTarget>;
  transactions: number;
  revokeRecords: number;
  /** Sequence the next (uncommitted) transaction would have: where fast-commit replay would start. */
  endSequence: number;
  /** Tags skipped because their data checksum did not match. */
  badDataBlocks: number;
  /**
   * A descriptor block of the current sequence whose checksum fails (its log
   * block): the scan ends there, and the kernel's jbd2 refuses the whole
   * journal (EFSBADCRC, "error loading journal"), so the mount fails.
   */
  badDescriptor?: number;
}

export interface JournalReader {
  jsb: JournalSuperblock;
  /** Logical journal block -> physical filesystem block. */
  pblk(logical: number): Promise<number>;
  read(logical: number): Promise<Buffer>;
}

interface Tag {
  fsBlock: number;
  logical: number;
  flags: number;
  checksum: number;
}

interface Transaction {
  sequence: number;
  tags: Tag[];
  revokes: number[];
}

/** tid_gt / tid_geq: sequence numbers wrap at 2^32. */
function tidGeq(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

export async function recoverJournal(vol: ExtVolume, journal: JournalReader): Promise<RecoveryResult> {
  const { jsb } = journal;
  const scanned: { badDescriptor?: number } = {};
  const transactions = await scan(vol, journal, scanned);
  // Pass REVOKE.
  const revoked = new Map<number, number>();
  let revokeRecords = 0;
  for (const t of transactions) {
    for (const block of t.revokes) {
      revokeRecords++;
      const prev = revoked.get(block);
      if (prev === undefined || tidGeq(t.sequence, prev)) revoked.set(block, t.sequence);
    }
  }
  // Pass REPLAY.
  const blocks = new Map<number, ReplayTarget>();
  let badDataBlocks = 0;
  for (const t of transactions) {
    for (const tag of t.tags) {
      const r = revoked.get(tag.fsBlock);
      if (r !== undefined && tidGeq(r, t.sequence)) continue;
      if (jsb.csumV2or3) {
        const data = await journal.read(tag.logical);
        let c = crc32cBe32(jsb.csumSeed, t.sequence);
        c = crc32c(c, data);
        const ok = jsb.csumV3 ? c === tag.checksum : (c & 0xffff) === tag.checksum;
        if (!ok) {
          badDataBlocks++;
          continue;
        }
      }
      if (!vol.validRange(tag.fsBlock)) {
        throw vol.corrupt(`journal transaction ${t.sequence}`, undefined, `a tag targets block ${tag.fsBlock}, outside the filesystem`);
      }
      blocks.set(tag.fsBlock, { journalPblk: await journal.pblk(tag.logical), escaped: (tag.flags & TAG_FLAG.ESCAPE) !== 0 });
    }
  }
  const last = transactions[transactions.length - 1];
  return {
    blocks,
    transactions: transactions.length,
    revokeRecords,
    endSequence: last ? (last.sequence + 1) >>> 0 : jsb.s_sequence,
    badDataBlocks,
    ...(scanned.badDescriptor === undefined ? {} : { badDescriptor: scanned.badDescriptor }),
  };
}

async function scan(vol: ExtVolume, journal: JournalReader, found: { badDescriptor?: number }): Promise<Transaction[]> {
  const { jsb } = journal;
  const done: Transaction[] = [];
  if (jsb.s_start === 0) return done;
  const logLength = jsb.last - jsb.s_first;
  const wrap = (b: number) => (b >= jsb.last ? b - logLength : b);
  if (jsb.s_start < jsb.s_first || jsb.s_start >= jsb.last) {
    throw vol.corrupt('journal superblock', undefined, `s_start ${jsb.s_start} is outside the log (${jsb.s_first}..${jsb.last})`);
  }
  let next = jsb.s_start;
  let sequence = jsb.s_sequence;
  let current: Transaction = { sequence, tags: [], revokes: [] };
  const tagSize = tagBytes(jsb);
  const tailSize = jsb.csumV2or3 ? 4 : 0;
  // The log cannot hold more blocks than the log area: stop there whatever the blocks say.
  for (let visited = 0; visited < logLength; visited++) {
    const logical = next;
    const buf = await journal.read(logical);
    next = wrap(next + 1);
    if (buf.readUInt32BE(0) !== JBD2_MAGIC_NUMBER) break;
    const blocktype = buf.readUInt32BE(4);
    if (buf.readUInt32BE(8) !== sequence) break;
    if (blocktype === BLOCK_TYPE.DESCRIPTOR) {
      // A descriptor of this sequence whose checksum fails: the end of what can be replayed, and the kernel refuses the journal.
      if (jsb.csumV2or3 && !descriptorTailOk(jsb, buf)) {
        found.badDescriptor = logical;
        break;
      }
      let pos = HEADER_SIZE;
      const end = buf.length - tailSize;
      while (pos + tagSize <= end) {
        let fsBlock: number;
        let flags: number;
        let checksum: number;
        if (jsb.csumV3) {
          fsBlock = buf.readUInt32BE(pos);
          flags = buf.readUInt32BE(pos + 4);
          if (jsb.bit64) fsBlock += buf.readUInt32BE(pos + 8) * 2 ** 32;
          checksum = buf.readUInt32BE(pos + 12);
        } else {
          fsBlock = buf.readUInt32BE(pos);
          checksum = buf.readUInt16BE(pos + 4);
          flags = buf.readUInt16BE(pos + 6);
          if (jsb.bit64) fsBlock += buf.readUInt32BE(pos + 8) * 2 ** 32;
        }
        current.tags.push({ fsBlock, logical: next, flags, checksum });
        next = wrap(next + 1);
        visited++;
        pos += tagSize;
        if (!(flags & TAG_FLAG.SAME_UUID)) pos += 16;
        if (flags & TAG_FLAG.LAST_TAG) break;
      }
      continue;
    }
    if (blocktype === BLOCK_TYPE.COMMIT) {
      if (jsb.csumV2or3 && !commitOk(jsb, buf)) break;
      done.push(current);
      sequence = (sequence + 1) >>> 0;
      current = { sequence, tags: [], revokes: [] };
      continue;
    }
    if (blocktype === BLOCK_TYPE.REVOKE) {
      if (jsb.csumV2or3 && !descriptorTailOk(jsb, buf)) {
        // The kernel refuses to mount here (PASS_REVOKE fails with EFSBADCRC); so do we.
        const stored = buf.readUInt32BE(buf.length - 4);
        throw new ExtChecksumError(vol.image, `journal revoke block (journal block ${logical})`, (await journal.pblk(logical)) * vol.blockSize, descriptorTail(jsb, buf), stored, { retryable: vol.retryable });
      }
      const count = buf.readUInt32BE(HEADER_SIZE);
      const recordSize = jsb.bit64 ? 8 : 4;
      if (count < 16 || count > buf.length - tailSize) {
        throw vol.corrupt(`journal revoke block (journal block ${logical})`, (await journal.pblk(logical)) * vol.blockSize, `r_count ${count} is out of range`);
      }
      for (let pos = 16; pos + recordSize <= count; pos += recordSize) {
        current.revokes.push(jsb.bit64 ? buf.readUInt32BE(pos) * 2 ** 32 + buf.readUInt32BE(pos + 4) : buf.readUInt32BE(pos));
      }
      continue;
    }
    // Any other block type with a matching sequence ends the log, as in the kernel.
    break;
  }
  return done;
}

function descriptorTail(jsb: JournalSuperblock, buf: Buffer): number {
  const copy = Buffer.from(buf);
  copy.writeUInt32BE(0, copy.length - 4);
  return crc32c(jsb.csumSeed, copy);
}

function descriptorTailOk(jsb: JournalSuperblock, buf: Buffer): boolean {
  return descriptorTail(jsb, buf) === buf.readUInt32BE(buf.length - 4);
}

function commitOk(jsb: JournalSuperblock, buf: Buffer): boolean {
  const copy = Buffer.from(buf);
  const stored = copy.readUInt32BE(16);
  copy.writeUInt32BE(0, 16);
  return crc32c(jsb.csumSeed, copy) === stored;
}
