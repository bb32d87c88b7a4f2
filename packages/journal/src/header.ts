/**
 * The file header, read and checked as systemd's journal_file_verify_header
 * does for a reader: signature, incompatible flags we must understand, a
 * known state, a header at least up to n_data, and header + arena within
 * the file.
 */
import * as L from './layout.ts';
import { JournalCorruptError, JournalTruncatedError, JournalUnsupportedError } from './errors.ts';
import { id128, isAligned64, u32, u64, u64n } from './numbers.ts';

export interface JournalHeader {
  compatibleFlags: number;
  incompatibleFlags: number;
  state: L.FileState;
  fileId: string;
  /** file_id's 16 bytes: the SipHash key of KEYED_HASH files. */
  fileIdBytes: Buffer;
  machineId: string;
  tailEntryBootId: string;
  seqnumId: string;
  headerSize: number;
  arenaSize: number;
  dataHashTableOffset: number;
  dataHashTableSize: number;
  fieldHashTableOffset: number;
  fieldHashTableSize: number;
  tailObjectOffset: number;
  nObjects: number;
  /** n_entries, bounded by what the arena can hold (see declaredEntries). */
  nEntries: number;
  /** n_entries as the header states it (more than nEntries only in a corrupt header; exact past 2^53). */
  declaredEntries: bigint;
  tailEntrySeqnum: bigint;
  headEntrySeqnum: bigint;
  entryArrayOffset: number;
  headEntryRealtime: bigint;
  tailEntryRealtime: bigint;
  tailEntryMonotonic: bigint;
  nData?: number;
  nFields?: number;
  nTags?: number;
  nEntryArrays?: number;
  /** HEADER_INCOMPATIBLE_COMPACT: 32-bit offsets in entries and entry arrays. */
  compact: boolean;
  /** HEADER_INCOMPATIBLE_KEYED_HASH: SipHash-2-4 keyed by file_id instead of lookup3. */
  keyedHash: boolean;
  /** HEADER_COMPATIBLE_SEALED: TAG objects (Forward Secure Sealing) are present; we do not verify them. */
  sealed: boolean;
}

const STATES: L.FileState[] = ['offline', 'online', 'archived'];

function contains(headerSize: number, fieldOffset: number, fieldSize = 8): boolean {
  return headerSize >= fieldOffset + fieldSize;
}

/**
 * Parse the header from the first bytes of a file of `fileSize` bytes.
 * `live` marks errors of a file being written (state ONLINE) as retryable.
 */
export function parseHeader(buf: Buffer, fileSize: number, name: string, live: boolean): JournalHeader {
  if (buf.length < L.HEADER_SIZE_MIN || !buf.subarray(0, 8).equals(L.SIGNATURE)) {
    throw new JournalCorruptError(name, 'not a journal file (no LPKSHHRH signature)', 0, false);
  }
  const incompatibleFlags = u32(buf, L.H_INCOMPATIBLE_FLAGS);
  const unknown = incompatibleFlags & ~L.HEADER_INCOMPATIBLE_SUPPORTED;
  if (unknown) {
    throw new JournalUnsupportedError(name, `it uses incompatible feature flags 0x${unknown.toString(16)} this reader does not know`, { incompatibleFlags });
  }
  const stateByte = buf[L.H_STATE];
  if (stateByte >= STATES.length) throw new JournalCorruptError(name, `unknown header state ${stateByte}`, L.H_STATE, false);
  const state = STATES[stateByte];
  const retryable = live && state === 'online';
  const headerSize = u64(buf, L.H_HEADER_SIZE);
  if (headerSize < L.HEADER_SIZE_MIN) throw new JournalCorruptError(name, `header_size ${headerSize} is below the minimum of ${L.HEADER_SIZE_MIN}`, L.H_HEADER_SIZE, retryable);
  const compatibleFlags = u32(buf, L.H_COMPATIBLE_FLAGS);
  const sealed = (compatibleFlags & L.HEADER_COMPATIBLE_SEALED) !== 0;
  if (sealed && !contains(headerSize, L.H_N_ENTRY_ARRAYS)) {
    throw new JournalCorruptError(name, 'a sealed file with a header too short for n_entry_arrays', L.H_HEADER_SIZE, retryable);
  }
  const arenaSize = u64(buf, L.H_ARENA_SIZE);
  if (headerSize + arenaSize > fileSize) throw new JournalTruncatedError(name, headerSize + arenaSize, fileSize, retryable);
  const tailObjectOffset = u64(buf, L.H_TAIL_OBJECT_OFFSET);
  if (tailObjectOffset > headerSize + arenaSize) throw new JournalTruncatedError(name, tailObjectOffset, headerSize + arenaSize, retryable);
  const dataHashTableOffset = u64(buf, L.H_DATA_HASH_TABLE_OFFSET);
  const fieldHashTableOffset = u64(buf, L.H_FIELD_HASH_TABLE_OFFSET);
  const entryArrayOffset = u64(buf, L.H_ENTRY_ARRAY_OFFSET);
  if (![dataHashTableOffset, fieldHashTableOffset, tailObjectOffset, entryArrayOffset].every(isAligned64)) {
    throw new JournalCorruptError(name, 'a header offset is not 64-bit aligned', L.H_DATA_HASH_TABLE_OFFSET, retryable);
  }
  // n_entries bounds every walk by index (bisection, stepping back from the tail). sd-journal is
  // bounded by walking the array chain instead; we bound the count by what the arena can hold:
  // each entry is an entry object (64 bytes at least) plus one array item (4 bytes at least).
  const declaredEntries = u64n(buf, L.H_N_ENTRIES);
  const nEntries = Math.min(Number(declaredEntries), Math.floor(arenaSize / (L.E_ITEMS + L.E_ITEM_SIZE_COMPACT)));
  const optional = (at: number) => (contains(headerSize, at) && buf.length >= at + 8 ? u64(buf, at) : undefined);
  return {
    compatibleFlags,
    incompatibleFlags,
    state,
    fileId: id128(buf, L.H_FILE_ID),
    fileIdBytes: Buffer.from(buf.subarray(L.H_FILE_ID, L.H_FILE_ID + 16)),
    machineId: id128(buf, L.H_MACHINE_ID),
    tailEntryBootId: id128(buf, L.H_TAIL_ENTRY_BOOT_ID),
    seqnumId: id128(buf, L.H_SEQNUM_ID),
    headerSize,
    arenaSize,
    dataHashTableOffset,
    dataHashTableSize: u64(buf, L.H_DATA_HASH_TABLE_SIZE),
    fieldHashTableOffset,
    fieldHashTableSize: u64(buf, L.H_FIELD_HASH_TABLE_SIZE),
    tailObjectOffset,
    nObjects: u64(buf, L.H_N_OBJECTS),
    nEntries,
    declaredEntries,
    tailEntrySeqnum: u64n(buf, L.H_TAIL_ENTRY_SEQNUM),
    headEntrySeqnum: u64n(buf, L.H_HEAD_ENTRY_SEQNUM),
    entryArrayOffset,
    headEntryRealtime: u64n(buf, L.H_HEAD_ENTRY_REALTIME),
    tailEntryRealtime: u64n(buf, L.H_TAIL_ENTRY_REALTIME),
    tailEntryMonotonic: u64n(buf, L.H_TAIL_ENTRY_MONOTONIC),
    nData: optional(L.H_N_DATA),
    nFields: optional(L.H_N_FIELDS),
    nTags: optional(L.H_N_TAGS),
    nEntryArrays: optional(L.H_N_ENTRY_ARRAYS),
    compact: (incompatibleFlags & L.HEADER_INCOMPATIBLE_COMPACT) !== 0,
    keyedHash: (incompatibleFlags & L.HEADER_INCOMPATIBLE_KEYED_HASH) !== 0,
    sealed,
  };
}
