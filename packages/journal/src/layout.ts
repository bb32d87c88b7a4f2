/**
 * The journal file format's on-disk constants, by the names systemd's
 * journal-def.h gives them (docs/JOURNAL_FILE_FORMAT.md describes them).
 * Every number here is a byte offset from the start of its structure; all
 * integers are little-endian; every object starts on an 8-byte boundary.
 */

export const SIGNATURE = Buffer.from('LPKSHHRH', 'latin1');

/** Header.state */
export const STATE_OFFLINE = 0;
export const STATE_ONLINE = 1;
export const STATE_ARCHIVED = 2;
export type FileState = 'offline' | 'online' | 'archived';

/** Header.incompatible_flags: a reader must refuse a file with a bit it does not know. */
export const HEADER_INCOMPATIBLE_COMPRESSED_XZ = 1 << 0;
export const HEADER_INCOMPATIBLE_COMPRESSED_LZ4 = 1 << 1;
export const HEADER_INCOMPATIBLE_KEYED_HASH = 1 << 2;
export const HEADER_INCOMPATIBLE_COMPRESSED_ZSTD = 1 << 3;
export const HEADER_INCOMPATIBLE_COMPACT = 1 << 4;
export const HEADER_INCOMPATIBLE_SUPPORTED =
  HEADER_INCOMPATIBLE_COMPRESSED_XZ |
  HEADER_INCOMPATIBLE_COMPRESSED_LZ4 |
  HEADER_INCOMPATIBLE_KEYED_HASH |
  HEADER_INCOMPATIBLE_COMPRESSED_ZSTD |
  HEADER_INCOMPATIBLE_COMPACT;

/** Header.compatible_flags: unknown bits are fine for a reader. */
export const HEADER_COMPATIBLE_SEALED = 1 << 0;
export const HEADER_COMPATIBLE_TAIL_ENTRY_BOOT_ID = 1 << 1;

/** struct Header */
export const H_SIGNATURE = 0;
export const H_COMPATIBLE_FLAGS = 8;
export const H_INCOMPATIBLE_FLAGS = 12;
export const H_STATE = 16;
export const H_FILE_ID = 24;
export const H_MACHINE_ID = 40;
export const H_TAIL_ENTRY_BOOT_ID = 56;
export const H_SEQNUM_ID = 72;
export const H_HEADER_SIZE = 88;
export const H_ARENA_SIZE = 96;
export const H_DATA_HASH_TABLE_OFFSET = 104;
export const H_DATA_HASH_TABLE_SIZE = 112;
export const H_FIELD_HASH_TABLE_OFFSET = 120;
export const H_FIELD_HASH_TABLE_SIZE = 128;
export const H_TAIL_OBJECT_OFFSET = 136;
export const H_N_OBJECTS = 144;
export const H_N_ENTRIES = 152;
export const H_TAIL_ENTRY_SEQNUM = 160;
export const H_HEAD_ENTRY_SEQNUM = 168;
export const H_ENTRY_ARRAY_OFFSET = 176;
export const H_HEAD_ENTRY_REALTIME = 184;
export const H_TAIL_ENTRY_REALTIME = 192;
export const H_TAIL_ENTRY_MONOTONIC = 200;
/** Fields from n_data on exist only when header_size covers them (added in systemd 187 and later). */
export const H_N_DATA = 208;
export const H_N_FIELDS = 216;
export const H_N_TAGS = 224;
export const H_N_ENTRY_ARRAYS = 232;
export const H_DATA_HASH_CHAIN_DEPTH = 240;
export const H_FIELD_HASH_CHAIN_DEPTH = 248;
export const H_TAIL_ENTRY_ARRAY_OFFSET = 256;
export const H_TAIL_ENTRY_ARRAY_N_ENTRIES = 260;
export const H_TAIL_ENTRY_OFFSET = 264;
/** The smallest header systemd accepts: everything up to n_data. */
export const HEADER_SIZE_MIN = 208;
/** Bytes we read for the header: systemd 254's whole struct. */
export const HEADER_READ_BYTES = 272;

/** ObjectHeader.type */
export const OBJECT_UNUSED = 0;
export const OBJECT_DATA = 1;
export const OBJECT_FIELD = 2;
export const OBJECT_ENTRY = 3;
export const OBJECT_DATA_HASH_TABLE = 4;
export const OBJECT_FIELD_HASH_TABLE = 5;
export const OBJECT_ENTRY_ARRAY = 6;
export const OBJECT_TAG = 7;
export const OBJECT_TYPE_NAMES = ['unused', 'DATA', 'FIELD', 'ENTRY', 'DATA_HASH_TABLE', 'FIELD_HASH_TABLE', 'ENTRY_ARRAY', 'TAG'];

/** ObjectHeader.flags (DATA objects only; at most one may be set). */
export const OBJECT_COMPRESSED_XZ = 1 << 0;
export const OBJECT_COMPRESSED_LZ4 = 1 << 1;
export const OBJECT_COMPRESSED_ZSTD = 1 << 2;
export const OBJECT_COMPRESSED_MASK = OBJECT_COMPRESSED_XZ | OBJECT_COMPRESSED_LZ4 | OBJECT_COMPRESSED_ZSTD;

/** struct ObjectHeader: type u8, flags u8, reserved[6], size le64. */
export const O_TYPE = 0;
export const O_FLAGS = 1;
export const O_SIZE = 8;
export const OBJECT_HEADER_SIZE = 16;

/** struct DataObject */
export const D_HASH = 16;
export const D_NEXT_HASH_OFFSET = 24;
export const D_NEXT_FIELD_OFFSET = 32;
export const D_ENTRY_OFFSET = 40;
export const D_ENTRY_ARRAY_OFFSET = 48;
export const D_N_ENTRIES = 56;
/** Payload offset without and with HEADER_INCOMPATIBLE_COMPACT (which adds two le32 tail fields). */
export const D_PAYLOAD_REGULAR = 64;
export const D_PAYLOAD_COMPACT = 72;

/** struct FieldObject */
export const F_HASH = 16;
export const F_NEXT_HASH_OFFSET = 24;
export const F_HEAD_DATA_OFFSET = 32;
export const F_PAYLOAD = 40;

/** struct EntryObject */
export const E_SEQNUM = 16;
export const E_REALTIME = 24;
export const E_MONOTONIC = 32;
export const E_BOOT_ID = 40;
export const E_XOR_HASH = 56;
export const E_ITEMS = 64;
/** An item is {le64 object_offset, le64 hash}, or a bare le32 object_offset in compact files. */
export const E_ITEM_SIZE_REGULAR = 16;
export const E_ITEM_SIZE_COMPACT = 4;

/** struct HashTableObject: items of {le64 head_hash_offset, le64 tail_hash_offset}. */
export const HT_ITEMS = 16;
export const HASH_ITEM_SIZE = 16;

/** struct EntryArrayObject */
export const EA_NEXT_ENTRY_ARRAY_OFFSET = 16;
export const EA_ITEMS = 24;

/** struct TagObject: seqnum, epoch, a 256-bit HMAC. */
export const TAG_OBJECT_SIZE = 64;

/** systemd's VALID_REALTIME / VALID_MONOTONIC / VALID_EPOCH bound. */
export const TIMESTAMP_LIMIT = 1n << 55n;
