/**
 * The jbd2 journal superblock (big-endian, journal block 0) and the block
 * header every journal metadata block starts with.
 */
import { crc32c } from '../checksum.ts';
import { ExtChecksumError, ExtUnsupportedError } from '../errors.ts';
import type { ExtVolume } from '../volume.ts';

export const JBD2_MAGIC_NUMBER = 0xc03b3998;

export const BLOCK_TYPE = {
  DESCRIPTOR: 1,
  COMMIT: 2,
  SUPERBLOCK_V1: 3,
  SUPERBLOCK_V2: 4,
  REVOKE: 5,
} as const;

export const JBD2_COMPAT_CHECKSUM = 0x1;
export const JBD2_INCOMPAT = {
  REVOKE: 0x1,
  BIT64: 0x2,
  ASYNC_COMMIT: 0x4,
  CSUM_V2: 0x8,
  CSUM_V3: 0x10,
  FAST_COMMIT: 0x20,
} as const;
const KNOWN_INCOMPAT = 0x3f;

/** Fast-commit area size when s_num_fc_blks is 0 (JBD2_DEFAULT_FAST_COMMIT_BLOCKS). */
const DEFAULT_FC_BLOCKS = 256;
const MIN_JOURNAL_BLOCKS = 1024;

export interface JournalSuperblock {
  blocktype: number;
  s_blocksize: number;
  s_maxlen: number;
  s_first: number;
  s_sequence: number;
  s_start: number;
  s_errno: number;
  s_feature_compat: number;
  s_feature_incompat: number;
  s_uuid: Buffer;
  s_num_fc_blks: number;
  // Derived, as jbd2's load_superblock sets them.
  /** One past the last log block: the log wraps from here to s_first. */
  last: number;
  /** Fast-commit area [fcFirst, fcLast) when FAST_COMMIT. */
  fcFirst: number;
  fcLast: number;
  csumV2or3: boolean;
  csumV3: boolean;
  bit64: boolean;
  /** crc32c(~0, s_uuid): seed of every jbd2 v2/v3 checksum. */
  csumSeed: number;
}

export function parseJournalSuperblock(vol: ExtVolume, buf: Buffer, journalBlocks: number, where: string, offset: number): JournalSuperblock {
  const bad = (detail: string) => vol.corrupt(where, offset, detail);
  const magic = buf.readUInt32BE(0);
  if (magic !== JBD2_MAGIC_NUMBER) throw bad(`bad jbd2 magic 0x${magic.toString(16)}`);
  const blocktype = buf.readUInt32BE(4);
  if (blocktype !== BLOCK_TYPE.SUPERBLOCK_V1 && blocktype !== BLOCK_TYPE.SUPERBLOCK_V2) throw bad(`block type ${blocktype} is not a journal superblock`);
  const s_blocksize = buf.readUInt32BE(0x0c);
  if (s_blocksize !== vol.blockSize) throw bad(`journal block size ${s_blocksize} differs from the filesystem's ${vol.blockSize}`);
  const s_maxlen = buf.readUInt32BE(0x10);
  const s_first = buf.readUInt32BE(0x14);
  if (s_maxlen > journalBlocks) throw bad(`s_maxlen ${s_maxlen} is larger than the journal inode (${journalBlocks} blocks)`);
  if (s_first === 0 || s_first >= s_maxlen) throw bad(`s_first ${s_first} is outside the journal (s_maxlen ${s_maxlen})`);
  const v2 = blocktype === BLOCK_TYPE.SUPERBLOCK_V2;
  const s_feature_compat = v2 ? buf.readUInt32BE(0x24) : 0;
  const s_feature_incompat = v2 ? buf.readUInt32BE(0x28) : 0;
  const unknown = s_feature_incompat & ~KNOWN_INCOMPAT;
  if (unknown) throw new ExtUnsupportedError(vol.image, `jbd2 incompatible feature 0x${unknown.toString(16)}`, 'the journal cannot be replayed');
  const csumV2or3 = (s_feature_incompat & (JBD2_INCOMPAT.CSUM_V2 | JBD2_INCOMPAT.CSUM_V3)) !== 0;
  const s_uuid = Buffer.from(buf.subarray(0x30, 0x40));
  if (csumV2or3) {
    const checksumType = buf.readUInt8(0x50);
    if (checksumType !== 4) throw bad(`s_checksum_type ${checksumType} is not crc32c (4)`);
    const copy = Buffer.from(buf.subarray(0, 1024));
    const stored = copy.readUInt32BE(0xfc);
    copy.writeUInt32BE(0, 0xfc);
    const computed = crc32c(0xffffffff, copy);
    if (computed !== stored) throw new ExtChecksumError(vol.image, where, offset, computed, stored, { retryable: vol.retryable });
  }
  const s_num_fc_blks = v2 ? buf.readUInt32BE(0x54) : 0;
  let last = s_maxlen;
  let fcFirst = s_maxlen;
  const fcLast = s_maxlen;
  if (s_feature_incompat & JBD2_INCOMPAT.FAST_COMMIT) {
    const fc = s_num_fc_blks || DEFAULT_FC_BLOCKS;
    if (s_maxlen - fc >= MIN_JOURNAL_BLOCKS) last = s_maxlen - fc;
    fcFirst = last + 1;
  }
  if (last <= s_first) throw bad(`the log area (${s_first}..${last}) is empty`);
  return {
    blocktype,
    s_blocksize,
    s_maxlen,
    s_first,
    s_sequence: buf.readUInt32BE(0x18),
    s_start: buf.readUInt32BE(0x1c),
    s_errno: buf.readInt32BE(0x20),
    s_feature_compat,
    s_feature_incompat,
    s_uuid,
    s_num_fc_blks,
    last,
    fcFirst,
    fcLast,
    csumV2or3,
    csumV3: (s_feature_incompat & JBD2_INCOMPAT.CSUM_V3) !== 0,
    bit64: (s_feature_incompat & JBD2_INCOMPAT.BIT64) !== 0,
    csumSeed: crc32c(0xffffffff, s_uuid),
  };
}

/** journal_tag_bytes: the size of one block tag in a descriptor block. */
export function tagBytes(jsb: JournalSuperblock): number {
  if (jsb.csumV3) return 16;
  let size = 12;
  if (jsb.s_feature_incompat & JBD2_INCOMPAT.CSUM_V2) size += 2;
  return jsb.bit64 ? size : size - 4;
}
