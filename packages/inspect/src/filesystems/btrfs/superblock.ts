/**
 * The superblock and its mirrors (64 KiB, 64 MiB, 256 GiB). A copy counts
 * when its magic, its own byte offset and its checksum are right; among the
 * copies that count (mirrors only with the primary's fsid, so the leftovers
 * of an older filesystem never win) the highest generation is used, as
 * `btrfs rescue super-recover` would choose. The kernel itself reads only
 * the primary: when a mirror wins, a warning says so.
 */
import type { BlockSource } from '@guestlens/block';
import { checksummerFor, sumAsNumber, type Checksummer } from './checksum.ts';
import { BtrfsChecksumError, BtrfsCorruptError, BtrfsUnsupportedError } from './errors.ts';
import {
  BTRFS_MAGIC,
  CSUM_NAMES,
  CSUM_SIZE,
  DEV_ITEM,
  INCOMPAT,
  INCOMPAT_NAMES,
  INCOMPAT_SUPPORTED,
  LABEL_SIZE,
  SB,
  SUPERBLOCK_OFFSETS,
  SUPERBLOCK_SIZE,
  SYS_CHUNK_ARRAY_SIZE,
} from './layout.ts';

export interface DevItem {
  devid: bigint;
  totalBytes: bigint;
  bytesUsed: bigint;
  uuid: Buffer;
  fsid: Buffer;
}

export interface Superblock {
  /** Where this copy was read. */
  offset: number;
  fsid: Buffer;
  /** The fsid tree blocks carry (metadata_uuid with METADATA_UUID, else fsid). */
  metadataUuid: Buffer;
  generation: bigint;
  root: bigint;
  rootLevel: number;
  chunkRoot: bigint;
  chunkRootLevel: number;
  chunkRootGeneration: bigint;
  logRoot: bigint;
  logRootLevel: number;
  totalBytes: bigint;
  bytesUsed: bigint;
  numDevices: bigint;
  sectorsize: number;
  nodesize: number;
  stripesize: number;
  compatRo: bigint;
  incompat: bigint;
  csumType: number;
  label: string;
  devItem: DevItem;
  sysChunkArray: Buffer;
}

export function parseDevItem(buf: Buffer, at: number): DevItem {
  return {
    devid: buf.readBigUInt64LE(at + DEV_ITEM.devid),
    totalBytes: buf.readBigUInt64LE(at + DEV_ITEM.total_bytes),
    bytesUsed: buf.readBigUInt64LE(at + DEV_ITEM.bytes_used),
    uuid: Buffer.from(buf.subarray(at + DEV_ITEM.uuid, at + DEV_ITEM.uuid + 16)),
    fsid: Buffer.from(buf.subarray(at + DEV_ITEM.fsid, at + DEV_ITEM.fsid + 16)),
  };
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** The fields of one 4 KiB copy; throws BtrfsCorruptError for values no btrfs can have. */
export function parseSuperblock(buf: Buffer, image: string, offset: number, retryable = false): Superblock {
  const fail = (why: string) => new BtrfsCorruptError(image, 'superblock', offset, why, { retryable });
  const sectorsize = buf.readUInt32LE(SB.sectorsize);
  const nodesize = buf.readUInt32LE(SB.nodesize);
  if (!isPowerOfTwo(sectorsize) || sectorsize < 4096 || sectorsize > 65536) throw fail(`sectorsize ${sectorsize} is not a power of two from 4096 to 65536`);
  if (!isPowerOfTwo(nodesize) || nodesize < sectorsize || nodesize > 65536) throw fail(`nodesize ${nodesize} is not a power of two from the sector size to 65536`);
  const sysSize = buf.readUInt32LE(SB.sys_chunk_array_size);
  if (sysSize > SYS_CHUNK_ARRAY_SIZE) throw fail(`sys_chunk_array_size ${sysSize} exceeds ${SYS_CHUNK_ARRAY_SIZE}`);
  const incompat = buf.readBigUInt64LE(SB.incompat_flags);
  const fsid = Buffer.from(buf.subarray(SB.fsid, SB.fsid + 16));
  const metadataUuid = incompat & BigInt(INCOMPAT.METADATA_UUID) ? Buffer.from(buf.subarray(SB.metadata_uuid, SB.metadata_uuid + 16)) : fsid;
  const rootLevel = buf[SB.root_level];
  const chunkRootLevel = buf[SB.chunk_root_level];
  const logRootLevel = buf[SB.log_root_level];
  for (const [name, level] of [['root_level', rootLevel], ['chunk_root_level', chunkRootLevel], ['log_root_level', logRootLevel]] as const) {
    if (level > 7) throw fail(`${name} ${level} is above 7`);
  }
  const labelRaw = buf.subarray(SB.label, SB.label + LABEL_SIZE);
  const nul = labelRaw.indexOf(0);
  return {
    offset,
    fsid,
    metadataUuid,
    generation: buf.readBigUInt64LE(SB.generation),
    root: buf.readBigUInt64LE(SB.root),
    rootLevel,
    chunkRoot: buf.readBigUInt64LE(SB.chunk_root),
    chunkRootLevel,
    chunkRootGeneration: buf.readBigUInt64LE(SB.chunk_root_generation),
    logRoot: buf.readBigUInt64LE(SB.log_root),
    logRootLevel,
    totalBytes: buf.readBigUInt64LE(SB.total_bytes),
    bytesUsed: buf.readBigUInt64LE(SB.bytes_used),
    numDevices: buf.readBigUInt64LE(SB.num_devices),
    sectorsize,
    nodesize,
    stripesize: buf.readUInt32LE(SB.stripesize),
    compatRo: buf.readBigUInt64LE(SB.compat_ro_flags),
    incompat,
    csumType: buf.readUInt16LE(SB.csum_type),
    label: labelRaw.toString('utf8', 0, nul < 0 ? LABEL_SIZE : nul),
    devItem: parseDevItem(buf, SB.dev_item),
    sysChunkArray: Buffer.from(buf.subarray(SB.sys_chunk_array, SB.sys_chunk_array + sysSize)),
  };
}

export interface SuperblockChoice {
  sb: Superblock;
  checksummer: Checksummer;
  /** What was wrong with the copies not chosen, when the primary lost. */
  warnings: string[];
  /** Set when the primary copy is unusable: the kernel, which reads only it, refuses the mount. */
  primaryRefused?: string;
}

/** Read the primary and the mirrors that fit on `source`; choose as the header says. */
export async function readSuperblock(source: BlockSource, retryable = false): Promise<SuperblockChoice> {
  const image = source.name;
  const copies: { sb: Superblock; checksummer: Checksummer }[] = [];
  const problems: string[] = [];
  let primaryError: Error | undefined;
  for (const [i, offset] of SUPERBLOCK_OFFSETS.entries()) {
    if (offset + SUPERBLOCK_SIZE > source.size) break;
    const buf = await source.read(offset, SUPERBLOCK_SIZE);
    try {
      const copy = await validCopy(buf, image, offset, retryable);
      if (copy === undefined) {
        if (i === 0) throw new BtrfsCorruptError(image, 'superblock', offset, `no btrfs magic ("${BTRFS_MAGIC}") at byte ${offset + SB.magic}`, { retryable });
        continue;
      }
      copies.push(copy);
    } catch (err) {
      if (i === 0) primaryError = err as Error;
      problems.push(`superblock copy at byte ${offset}: ${(err as Error).message}`);
    }
  }
  const primary = primaryError ? undefined : copies[0];
  // Mirrors count only when they belong to the same filesystem as the primary (or the primary is unreadable).
  const eligible = primary ? copies.filter((c) => c.sb.fsid.equals(primary.sb.fsid)) : copies;
  if (eligible.length === 0) throw primaryError ?? new BtrfsCorruptError(image, 'superblock', SUPERBLOCK_OFFSETS[0], 'no valid superblock copy', { retryable });
  let best = eligible[0];
  for (const c of eligible) if (c.sb.generation > best.sb.generation) best = c;
  const warnings: string[] = [];
  let primaryRefused: string | undefined;
  if (best !== primary) {
    warnings.push(
      `the superblock at byte ${best.sb.offset} (generation ${best.sb.generation}) is used instead of the primary${primaryError ? ` (${primaryError.message})` : ` (generation ${primary!.sb.generation})`}; the kernel reads only the primary and may refuse to mount`,
    );
    // The kernel mounts from the primary alone: one it rejects is a refused mount, whatever the mirrors say.
    if (primaryError) primaryRefused = `the kernel refuses to mount it: it reads only the primary superblock, which is unusable (${primaryError.message}); these figures are from the copy at byte ${best.sb.offset}`;
  }
  checkFeatures(best.sb, image);
  return { sb: best.sb, checksummer: best.checksummer, warnings, primaryRefused };
}

async function validCopy(buf: Buffer, image: string, offset: number, retryable: boolean): Promise<{ sb: Superblock; checksummer: Checksummer } | undefined> {
  if (buf.toString('latin1', SB.magic, SB.magic + 8) !== BTRFS_MAGIC) return undefined;
  const bytenr = buf.readBigUInt64LE(SB.bytenr);
  if (bytenr !== BigInt(offset)) throw new BtrfsCorruptError(image, 'superblock', offset, `it says it lives at byte ${bytenr}`, { retryable });
  const csumType = buf.readUInt16LE(SB.csum_type);
  const checksummer = await checksummerFor(csumType);
  if (!checksummer) throw new BtrfsUnsupportedError(image, `checksum type ${csumType}`, `btrfs defines ${CSUM_NAMES.join(', ')}`);
  const computed = checksummer.digest(buf.subarray(CSUM_SIZE, SUPERBLOCK_SIZE));
  const stored = buf.subarray(0, checksummer.length);
  if (!computed.equals(stored)) {
    throw new BtrfsChecksumError(image, `superblock (${checksummer.name})`, offset, sumAsNumber(computed), sumAsNumber(Buffer.from(stored)), { retryable });
  }
  return { sb: parseSuperblock(buf, image, offset, retryable), checksummer };
}

function checkFeatures(sb: Superblock, image: string): void {
  const unknown = sb.incompat & ~BigInt(INCOMPAT_SUPPORTED);
  if (unknown === 0n) return;
  const names: string[] = [];
  for (let bit = 0n; bit < 64n; bit++) {
    const mask = 1n << bit;
    if (unknown & mask) names.push(INCOMPAT_NAMES[Number(mask)] ?? `incompat bit 0x${mask.toString(16)}`);
  }
  throw new BtrfsUnsupportedError(image, names.join(', '));
}
