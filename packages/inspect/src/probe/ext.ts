/**
 * ext2/3/4 superblock at byte 1024. ext2, ext3 or ext4 is decided from the
 * feature flags exactly as libblkid decides it: a journal makes ext3 unless
 * some feature ext3 does not know is set, which makes ext4; without a
 * journal and without such features it is ext2.
 */
import type { ProbeReader } from './reader.ts';
import type { ProbeResult } from './result.ts';
import { formatUuid, labelFrom } from './text.ts';

const SUPERBLOCK_OFFSET = 1024;
const EXT_MAGIC = 0xef53;

const COMPAT_HAS_JOURNAL = 0x0004;
const INCOMPAT_FILETYPE = 0x0002;
const INCOMPAT_RECOVER = 0x0004;
const INCOMPAT_JOURNAL_DEV = 0x0008;
const INCOMPAT_META_BG = 0x0010;
const RO_COMPAT_SPARSE_SUPER = 0x0001;
const RO_COMPAT_LARGE_FILE = 0x0002;
const RO_COMPAT_BTREE_DIR = 0x0004;
const FLAGS_TEST_FILESYS = 0x0004;

/** Features the ext2 and ext3 drivers of old understood; anything else means ext4. */
const EXT2_INCOMPAT_SUPP = INCOMPAT_FILETYPE | INCOMPAT_META_BG;
const EXT3_INCOMPAT_SUPP = INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_META_BG;
const EXT23_RO_COMPAT_SUPP = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_BTREE_DIR;

export interface ExtFeatures {
  compat: number;
  incompat: number;
  roCompat: number;
  flags: number;
}

/** libblkid's choice between jbd, ext4dev, ext4, ext3 and ext2; undefined when none of its probes accepts the flags. */
export function extTypeFromFeatures(f: ExtFeatures): string | undefined {
  if (f.incompat & INCOMPAT_JOURNAL_DEV) return 'jbd';
  const beyondExt3 = (f.roCompat & ~EXT23_RO_COMPAT_SUPP) !== 0 || (f.incompat & ~EXT3_INCOMPAT_SUPP) !== 0;
  const testFs = (f.flags & FLAGS_TEST_FILESYS) !== 0;
  if (testFs) return 'ext4dev';
  if (beyondExt3) return 'ext4';
  if (f.compat & COMPAT_HAS_JOURNAL) return 'ext3';
  const beyondExt2 = (f.roCompat & ~EXT23_RO_COMPAT_SUPP) !== 0 || (f.incompat & ~EXT2_INCOMPAT_SUPP) !== 0;
  // No journal but a flag only ext3 knows (needs_recovery): blkid accepts it as none of the three.
  return beyondExt2 ? undefined : 'ext2';
}

export async function probeExt(r: ProbeReader): Promise<ProbeResult | undefined> {
  const sb = await r.read(SUPERBLOCK_OFFSET, 1024);
  if (!sb || sb.readUInt16LE(0x38) !== EXT_MAGIC) return undefined;
  // Like blkid, the magic is all that is checked here; the driver validates the rest when it opens the filesystem.
  const logBlockSize = sb.readUInt32LE(0x18);
  const features: ExtFeatures = {
    compat: sb.readUInt32LE(0x5c),
    incompat: sb.readUInt32LE(0x60),
    roCompat: sb.readUInt32LE(0x64),
    flags: sb.readUInt32LE(0x160),
  };
  const type = extTypeFromFeatures(features);
  if (!type) return undefined;
  const result: ProbeResult = {
    type,
    usage: type === 'jbd' ? 'other' : 'filesystem',
    label: labelFrom(sb.subarray(0x78, 0x88)),
    uuid: formatUuid(sb.subarray(0x68, 0x78)),
    version: `${sb.readUInt32LE(0x4c)}.${sb.readUInt16LE(0x3e)}`,
    blockSize: logBlockSize <= 16 ? 1024 * 2 ** logBlockSize : undefined,
  };
  // A journal device names itself as the log of the filesystem that uses it.
  if (type === 'jbd') result.logUuid = result.uuid;
  if (features.compat & COMPAT_HAS_JOURNAL) result.extJournal = formatUuid(sb.subarray(0xd0, 0xe0));
  // Everything but ext2 itself is also "ext2" to blkid when an ext2 driver could mount it (no incompat feature ext2 lacks).
  if (type !== 'ext2' && type !== 'jbd' && (features.incompat & ~EXT2_INCOMPAT_SUPP) === 0) result.secType = 'ext2';
  return result;
}
