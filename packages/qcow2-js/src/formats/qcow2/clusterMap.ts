/**
 * Guest offset → mapping run, as a pure function of the header and one L2
 * table (QEMU's qcow2_get_host_offset and its count of contiguous clusters):
 * no I/O, so every rule is testable on a Buffer. Neighbouring clusters of one
 * kind are coalesced into one run, so contiguous data is one read of the file.
 */
import { corruptError } from '../../errors.ts';
import type { Qcow2Header } from './header.ts';
import {
  SC_COMPRESSED,
  SC_INVALID,
  SC_NORMAL,
  SC_UNALLOCATED_PLAIN,
  SUBCLUSTERS_PER_CLUSTER,
  hasHostCluster,
  hostOffsetOf,
  isZero,
  sameTypeSubclusters,
  subclusterType,
  type SubclusterType,
} from './l2Entry.ts';
import { compressedDescriptor } from './compressedCluster.ts';

/** One stretch of the guest disk with a single kind of mapping. */
export interface Run {
  type: SubclusterType;
  /** Bytes from the requested offset. */
  length: number;
  /** SC_NORMAL: host byte offset of the first byte. SC_COMPRESSED: host offset of the compressed bytes. */
  host: number;
  /** SC_COMPRESSED: upper bound of the compressed length. */
  compressedLength: number;
  /** Where the L2 entry of the first cluster lives in the file (for error messages). */
  entryOffset: number;
}

/** Where a guest offset falls in the two-level table. */
export interface Location {
  clusterIndex: number;
  inCluster: number;
  l1Index: number;
  l2Index: number;
  /** Bytes from the offset to the end of the request or of this L2 table's reach, whichever is first. */
  available: number;
}

export function locate(h: Qcow2Header, offset: number, maxLength: number): Location {
  const clusterSize = 2 ** h.clusterBits;
  const l2Entries = 2 ** h.l2Bits;
  const clusterIndex = Math.floor(offset / clusterSize);
  const inCluster = offset - clusterIndex * clusterSize;
  const l1Index = Math.floor(clusterIndex / l2Entries);
  const l2Index = clusterIndex - l1Index * l2Entries;
  const available = Math.min(maxLength, (l2Entries - l2Index) * clusterSize - inCluster);
  return { clusterIndex, inCluster, l1Index, l2Index, available };
}

/** The run of a location no L2 table covers (L1 entry 0 or past the L1 table): the backing file decides. */
export function unallocatedRun(at: Location): Run {
  return { type: SC_UNALLOCATED_PLAIN, length: at.available, host: 0, compressedLength: 0, entryOffset: 0 };
}

/** The L2 table offset an L1 entry holds (0: none), checked for alignment. */
export function l2OffsetFromL1(h: Qcow2Header, l1: Buffer, l1Index: number, image: string): number {
  const l2Offset = hostOffsetOf(l1.readUInt32BE(l1Index * 8), l1.readUInt32BE(l1Index * 8 + 4));
  if (l2Offset !== 0 && l2Offset % h.clusterSize !== 0) {
    throw corruptError(image, `L2 table offset ${l2Offset} in L1 entry ${l1Index} is not cluster-aligned`, h.l1TableOffset + l1Index * 8);
  }
  return l2Offset;
}

/**
 * The run starting at `at` within `table` (the L2 table stored at file
 * offset `l2Offset`): one mapping type, and for data, one contiguous stretch
 * of the host file. Never crosses the table; compressed clusters come one at
 * a time.
 */
export function runInL2Table(h: Qcow2Header, table: Buffer, l2Offset: number, at: Location, hasDataFile: boolean, image: string): Run {
  const { clusterBits, extendedL2 } = h;
  const clusterSize = 2 ** clusterBits;
  const l2Entries = 2 ** h.l2Bits;
  const { l2Index, inCluster, available, clusterIndex } = at;
  const entryBytes = extendedL2 ? 16 : 8;
  const subclusterSize = clusterSize / SUBCLUSTERS_PER_CLUSTER;
  let p = l2Index * entryBytes;
  const entryOffset = l2Offset + p;
  let hi = table.readUInt32BE(p);
  let lo = table.readUInt32BE(p + 4);
  let zeroBits = extendedL2 ? table.readUInt32BE(p + 8) : 0;
  let allocBits = extendedL2 ? table.readUInt32BE(p + 12) : 0;
  const firstSc = extendedL2 ? Math.floor(inCluster / subclusterSize) : 0;
  const type = subclusterType(hi, lo, extendedL2, zeroBits, allocBits, firstSc, hasDataFile);
  checkEntry(h, type, hi, lo, clusterIndex * clusterSize, entryOffset, hasDataFile, image);

  if (type === SC_COMPRESSED) {
    const d = compressedDescriptor(hi, lo, clusterBits);
    return { type, length: Math.min(clusterSize - inCluster, available), host: d.offset, compressedLength: d.length, entryOffset };
  }

  let length: number;
  let wholeCluster: boolean;
  if (extendedL2) {
    const count = sameTypeSubclusters(hi, lo, zeroBits, allocBits, firstSc, hasDataFile);
    length = (firstSc + count) * subclusterSize - inCluster;
    wholeCluster = firstSc + count === SUBCLUSTERS_PER_CLUSTER;
  } else {
    length = clusterSize - inCluster;
    wholeCluster = true;
  }
  const hostCluster = hostOffsetOf(hi, lo);
  let expectedHost = hostCluster + clusterSize;
  for (let index = l2Index + 1; wholeCluster && length < available && index < l2Entries; index++) {
    p = index * entryBytes;
    hi = table.readUInt32BE(p);
    lo = table.readUInt32BE(p + 4);
    if (extendedL2) {
      zeroBits = table.readUInt32BE(p + 8);
      allocBits = table.readUInt32BE(p + 12);
    }
    if (subclusterType(hi, lo, extendedL2, zeroBits, allocBits, 0, hasDataFile) !== type) break;
    // Zero and v2 rules, alignment: checked when the next run starts at this entry.
    if (type === SC_NORMAL) {
      if (hostOffsetOf(hi, lo) !== expectedHost) break;
      expectedHost += clusterSize;
    } else if (isZero(type) && h.version < 3) {
      break;
    }
    if (extendedL2) {
      const count = sameTypeSubclusters(hi, lo, zeroBits, allocBits, 0, hasDataFile);
      length += count * subclusterSize;
      wholeCluster = count === SUBCLUSTERS_PER_CLUSTER;
    } else {
      length += clusterSize;
    }
  }
  return { type, length: Math.min(length, available), host: type === SC_NORMAL ? hostCluster + inCluster : 0, compressedLength: 0, entryOffset };
}

/** QEMU's checks on the entry that starts a run (qcow2_get_host_offset). */
function checkEntry(h: Qcow2Header, type: SubclusterType, hi: number, lo: number, guestCluster: number, entryOffset: number, hasDataFile: boolean, image: string): void {
  if (type === SC_INVALID) {
    throw corruptError(image, `invalid extended L2 entry for guest offset ${guestCluster} (subcluster both allocated and zero, or allocated without a host cluster)`, entryOffset);
  }
  if (isZero(type) && h.version < 3) {
    throw corruptError(image, `zero cluster entry for guest offset ${guestCluster} in a version 2 image`, entryOffset);
  }
  if (type === SC_COMPRESSED && hasDataFile) {
    throw corruptError(image, `compressed cluster entry for guest offset ${guestCluster} in an image with an external data file`, entryOffset);
  }
  if (hasHostCluster(type)) {
    const host = hostOffsetOf(hi, lo);
    if (host % h.clusterSize !== 0) {
      throw corruptError(image, `host cluster offset ${host} for guest offset ${guestCluster} is not cluster-aligned`, entryOffset);
    }
    if (hasDataFile && host !== guestCluster) {
      throw corruptError(image, `external data file offset ${host} does not match guest offset ${guestCluster}`, entryOffset);
    }
  }
}
