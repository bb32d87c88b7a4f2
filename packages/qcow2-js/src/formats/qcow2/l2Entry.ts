/**
 * Classifying L1 and L2 entries, as QEMU's qcow2_get_subcluster_type does.
 * Entries are handled as two 32-bit halves (`hi`, `lo`) read big-endian from
 * the table: 64-bit integers would need BigInt on the hot path.
 *
 * Standard L2 entry: bit 63 copied, bit 62 compressed, bits 9-55 host cluster
 * offset, bit 0 "reads as zeros" (v3). Extended L2 entries add a second word:
 * bits 0-31 "subcluster allocated", bits 32-63 "subcluster reads as zeros".
 */

export const SC_NORMAL = 0;
export const SC_COMPRESSED = 1;
/** Reads as zeros, no host cluster. */
export const SC_ZERO_PLAIN = 2;
/** Reads as zeros, host cluster kept allocated. */
export const SC_ZERO_ALLOC = 3;
/** Not allocated in this layer: the backing file decides (zeros without one). */
export const SC_UNALLOCATED_PLAIN = 4;
/** Not allocated although the cluster has a host cluster (extended L2 only): backing file. */
export const SC_UNALLOCATED_ALLOC = 5;
/** Both "allocated" and "zero" set for a subcluster, or allocation bits without a host cluster. */
export const SC_INVALID = 6;

export type SubclusterType = number;

export const SUBCLUSTERS_PER_CLUSTER = 32;

const COPIED_HI = 0x80000000;
const COMPRESSED_HI = 0x40000000;
const ZERO_LO = 1;

/** Bits 9-55 of an L1 or L2 entry: the host offset of a table or cluster. */
export function hostOffsetOf(hi: number, lo: number): number {
  return (hi & 0x00ffffff) * 0x1_0000_0000 + ((lo & 0xfffffe00) >>> 0);
}

export function isCompressed(hi: number): boolean {
  return (hi & COMPRESSED_HI) !== 0;
}

/**
 * The type of subcluster `sc` of the cluster an entry describes.
 * `zeroBits`/`allocBits` are the extended-L2 bitmap halves (ignored when !extended).
 */
export function subclusterType(hi: number, lo: number, extended: boolean, zeroBits: number, allocBits: number, sc: number, hasDataFile: boolean): SubclusterType {
  if (hi & COMPRESSED_HI) return SC_COMPRESSED;
  const host = hostOffsetOf(hi, lo);
  if (!extended) {
    if (lo & ZERO_LO) return host !== 0 ? SC_ZERO_ALLOC : SC_ZERO_PLAIN;
    // Offset 0 is a valid data-file offset; QEMU tells it from "unallocated" by the copied flag.
    if (host === 0 && !(hasDataFile && hi & COPIED_HI)) return SC_UNALLOCATED_PLAIN;
    return SC_NORMAL;
  }
  const allocated = host !== 0 || (hasDataFile && (hi & COPIED_HI) !== 0);
  if (allocated) {
    if ((zeroBits & allocBits) !== 0) return SC_INVALID;
    if ((zeroBits >>> sc) & 1) return SC_ZERO_ALLOC;
    if ((allocBits >>> sc) & 1) return SC_NORMAL;
    return SC_UNALLOCATED_ALLOC;
  }
  if (allocBits !== 0) return SC_INVALID;
  if ((zeroBits >>> sc) & 1) return SC_ZERO_PLAIN;
  return SC_UNALLOCATED_PLAIN;
}

/** Subclusters from `first` on that have the same type as `first`. */
export function sameTypeSubclusters(hi: number, lo: number, zeroBits: number, allocBits: number, first: number, hasDataFile: boolean): number {
  const type = subclusterType(hi, lo, true, zeroBits, allocBits, first, hasDataFile);
  let sc = first + 1;
  while (sc < SUBCLUSTERS_PER_CLUSTER && subclusterType(hi, lo, true, zeroBits, allocBits, sc, hasDataFile) === type) sc++;
  return sc - first;
}

export function isZero(type: SubclusterType): boolean {
  return type === SC_ZERO_PLAIN || type === SC_ZERO_ALLOC;
}

export function isUnallocated(type: SubclusterType): boolean {
  return type === SC_UNALLOCATED_PLAIN || type === SC_UNALLOCATED_ALLOC;
}

/** Types whose host offset QEMU checks for alignment (they keep a host cluster). */
export function hasHostCluster(type: SubclusterType): boolean {
  return type === SC_NORMAL || type === SC_ZERO_ALLOC || type === SC_UNALLOCATED_ALLOC;
}
