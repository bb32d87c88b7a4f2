/**
 * The base block (file header): signature, sequence numbers, version, the
 * root cell and the size of the hive bins data, guarded by an XOR-32
 * checksum over its first 508 bytes.
 *
 * Dirty state, as Windows decides it: a hive is dirty when its primary and
 * secondary sequence numbers differ (a write began and did not finish, or
 * changes are waiting in the transaction logs) or when the checksum is
 * wrong. Windows then replays the .LOG1/.LOG2 files; guestlens does not
 * replay logs: it reads the primary file as it is and says it is dirty.
 */
import {
  BASE_BLOCK,
  BASE_BLOCK_SIZE,
  CELL_ALIGN,
  FILE_FORMAT_DIRECT_MEMORY_LOAD,
  FILE_TYPE,
  HBIN_ALIGN,
  KNOWN_MINOR_VERSIONS,
  MAJOR_VERSION,
  REGF_SIGNATURE,
} from './layout.ts';
import { RegfFormatError } from './errors.ts';
import { readFiletime } from './filetime.ts';

export interface BaseBlock {
  primarySequence: number;
  secondarySequence: number;
  /** FILETIME of the last write. */
  lastWritten: bigint;
  majorVersion: number;
  minorVersion: number;
  fileType: number;
  fileFormat: number;
  /** Cell index of the root key node. */
  rootCell: number;
  /** Bytes of hive bins data after the base block. */
  hiveBinsDataSize: number;
  clusteringFactor: number;
  /** The file name Windows stored for debugging (a partial path), NULs trimmed. */
  fileName: string;
  checksum: number;
  computedChecksum: number;
}

/** XOR-32 of the first 508 bytes; Windows stores 1 for 0 and 0xfffffffe for 0xffffffff (HvpHeaderCheckSum). */
export function baseBlockChecksum(block: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BASE_BLOCK.checksummedLength; i += 4) sum ^= block.readUInt32LE(i);
  sum >>>= 0;
  if (sum === 0) return 1;
  if (sum === 0xffffffff) return 0xfffffffe;
  return sum;
}

/**
 * Parse the base block; throws RegfFormatError when this is not a primary
 * hive file we can read (no signature, a transaction log, another version).
 * A checksum mismatch is not thrown here: it makes the hive dirty.
 */
export function parseBaseBlock(hive: string, block: Buffer, fileSize: number): BaseBlock {
  if (block.length < BASE_BLOCK_SIZE || block.toString('latin1', 0, 4) !== REGF_SIGNATURE) {
    throw new RegfFormatError(hive, `not a registry hive: no "regf" signature at byte 0${block.length < BASE_BLOCK_SIZE ? ` (the file has ${fileSize} bytes, less than a base block)` : ''}`);
  }
  const u32 = (at: number) => block.readUInt32LE(at);
  const bb: BaseBlock = {
    primarySequence: u32(BASE_BLOCK.primarySequence),
    secondarySequence: u32(BASE_BLOCK.secondarySequence),
    lastWritten: readFiletime(block, BASE_BLOCK.lastWritten),
    majorVersion: u32(BASE_BLOCK.majorVersion),
    minorVersion: u32(BASE_BLOCK.minorVersion),
    fileType: u32(BASE_BLOCK.fileType),
    fileFormat: u32(BASE_BLOCK.fileFormat),
    rootCell: u32(BASE_BLOCK.rootCell),
    hiveBinsDataSize: u32(BASE_BLOCK.hiveBinsDataSize),
    clusteringFactor: u32(BASE_BLOCK.clusteringFactor),
    fileName: block.toString('utf16le', BASE_BLOCK.fileName, BASE_BLOCK.fileName + BASE_BLOCK.fileNameLength).replace(/\0[\s\S]*$/, ''),
    checksum: u32(BASE_BLOCK.checksum),
    computedChecksum: baseBlockChecksum(block),
  };
  if (bb.fileType !== FILE_TYPE.primary) {
    const log = bb.fileType === FILE_TYPE.log || bb.fileType === FILE_TYPE.logAlternate || bb.fileType === FILE_TYPE.logNew;
    throw new RegfFormatError(
      hive,
      log
        ? `this is a registry transaction log (file type ${bb.fileType}), not a hive: open the primary file and pass the log as one of its logs`
        : `unknown registry file type ${bb.fileType} (0 is a primary hive file)`,
      log ? 'EINVAL' : 'EOPNOTSUPP',
      { fileType: bb.fileType },
    );
  }
  if (bb.majorVersion !== MAJOR_VERSION || !KNOWN_MINOR_VERSIONS.includes(bb.minorVersion)) {
    throw new RegfFormatError(hive, `registry hive version ${bb.majorVersion}.${bb.minorVersion} is not one guestlens reads (1.2 to 1.6)`, 'EOPNOTSUPP', {
      version: `${bb.majorVersion}.${bb.minorVersion}`,
    });
  }
  if (bb.fileFormat !== FILE_FORMAT_DIRECT_MEMORY_LOAD) {
    throw new RegfFormatError(hive, `registry hive file format ${bb.fileFormat} is not one guestlens reads (1, direct memory load)`, 'EOPNOTSUPP');
  }
  if (bb.hiveBinsDataSize === 0 || bb.hiveBinsDataSize % HBIN_ALIGN !== 0) {
    throw new RegfFormatError(hive, `registry hive base block: hive bins data size ${bb.hiveBinsDataSize} is not a positive multiple of ${HBIN_ALIGN}`, 'EINVAL', {
      hiveBinsDataSize: bb.hiveBinsDataSize,
    });
  }
  if (bb.rootCell % CELL_ALIGN !== 0 || bb.rootCell >= bb.hiveBinsDataSize) {
    throw new RegfFormatError(hive, `registry hive base block: root cell 0x${bb.rootCell.toString(16)} lies outside the hive bins data (${bb.hiveBinsDataSize} bytes)`, 'EINVAL', {
      rootCell: bb.rootCell,
    });
  }
  return bb;
}

/** Why the hive is dirty, in words; empty when it is clean. */
export function dirtyReasons(bb: BaseBlock): string[] {
  const reasons: string[] = [];
  if (bb.primarySequence !== bb.secondarySequence) {
    reasons.push(`primary sequence number ${bb.primarySequence} differs from secondary sequence number ${bb.secondarySequence}`);
  }
  if (bb.checksum !== bb.computedChecksum) {
    reasons.push(`base block checksum 0x${bb.checksum.toString(16)} differs from the computed 0x${bb.computedChecksum.toString(16)}`);
  }
  return reasons;
}
