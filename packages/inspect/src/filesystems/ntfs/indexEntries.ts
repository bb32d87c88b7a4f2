/**
 * Index nodes: an index header (where the entries start, how many bytes they
 * take) and the entries that follow, each with its key, its data (for view
 * indexes such as $Secure's $SII) or the MFT reference it indexes (for
 * directories), and, in a node that has children, the VCN of the child
 * holding the keys that sort before it. The last entry carries no key
 * (INDEX_ENTRY_END) but may point at a child. Nodes live in the
 * $INDEX_ROOT attribute or in INDX blocks of $INDEX_ALLOCATION (fixed up
 * like MFT records).
 */
import { applyFixups } from './fixups.ts';
import { FN, INDEX_BLOCK, INDEX_ENTRY, INDEX_ENTRY_FLAGS, INDEX_HEADER, MAGIC_INDX } from './layout.ts';

export interface IndexEntry {
  flags: number;
  /** The key (a $FILE_NAME for directories); empty for the end entry. */
  key: Buffer;
  /** Directories: the MFT reference of the file the entry names. */
  fileRef: bigint;
  /** View indexes: the entry's data. */
  data: Buffer;
  /** The child node's VCN, for entries of a node with children. */
  childVcn?: number;
  isEnd: boolean;
}

/** What kind of keys the index has, for the key checks ntfs-3g makes. */
export type IndexKeyKind = 'filename' | 'view';

/**
 * Parse the entries of the index header at `headerAt` of `buf`, which must
 * all lie within `buf` (a string says why they do not).
 */
export function parseIndexEntries(buf: Buffer, headerAt: number, kind: IndexKeyKind): IndexEntry[] | string {
  if (headerAt + INDEX_HEADER.size > buf.length) return 'the index header runs past its node';
  const entriesOffset = buf.readUInt32LE(headerAt + INDEX_HEADER.entries_offset);
  const indexLength = buf.readUInt32LE(headerAt + INDEX_HEADER.index_length);
  const allocated = buf.readUInt32LE(headerAt + INDEX_HEADER.allocated_size);
  if (entriesOffset < INDEX_HEADER.size || entriesOffset > indexLength || indexLength > allocated) {
    return `index header is inconsistent (entries at ${entriesOffset}, length ${indexLength}, allocated ${allocated})`;
  }
  const end = headerAt + indexLength;
  if (end > buf.length) return `index entries (${indexLength} bytes) run past their node (${buf.length - headerAt} bytes)`;
  const entries: IndexEntry[] = [];
  let at = headerAt + entriesOffset;
  // Every entry is at least 16 bytes, so the walk ends within indexLength / 16 steps.
  for (;;) {
    if (at + INDEX_ENTRY.key > end) return `index entry at ${at - headerAt} runs past the end of the entries`;
    const length = buf.readUInt16LE(at + INDEX_ENTRY.length);
    const keyLength = buf.readUInt16LE(at + INDEX_ENTRY.key_length);
    const flags = buf.readUInt16LE(at + INDEX_ENTRY.ie_flags);
    if (length < INDEX_ENTRY.key || at + length > end) return `index entry at ${at - headerAt} has a bad length ${length}`;
    const isEnd = (flags & INDEX_ENTRY_FLAGS.END) !== 0;
    const isNode = (flags & INDEX_ENTRY_FLAGS.NODE) !== 0;
    if (isNode && length < INDEX_ENTRY.key + 8) return `index entry at ${at - headerAt} is too short for its child pointer`;
    let childVcn: number | undefined;
    if (isNode) {
      const v = buf.readBigInt64LE(at + length - 8);
      if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) return `index entry at ${at - headerAt} points at child VCN ${v}`;
      childVcn = Number(v);
    }
    if (isEnd) {
      entries.push({ flags, key: Buffer.alloc(0), fileRef: 0n, data: Buffer.alloc(0), ...(childVcn === undefined ? {} : { childVcn }), isEnd: true });
      return entries;
    }
    if (INDEX_ENTRY.key + keyLength > length) return `index entry at ${at - headerAt}: key of ${keyLength} bytes runs past the entry`;
    let key: Buffer = buf.subarray(at + INDEX_ENTRY.key, at + INDEX_ENTRY.key + keyLength);
    let data: Buffer = Buffer.alloc(0);
    let fileRef = 0n;
    if (kind === 'filename') {
      // As ntfs-3g checks it: the name must lie inside the entry (not necessarily inside key_length).
      if (length < INDEX_ENTRY.key + FN.file_name || INDEX_ENTRY.key + FN.file_name + buf[at + INDEX_ENTRY.key + FN.file_name_length] * 2 > length) {
        return `index entry at ${at - headerAt}: its file name runs past the entry`;
      }
      key = buf.subarray(at + INDEX_ENTRY.key, at + length);
      fileRef = buf.readBigUInt64LE(at + INDEX_ENTRY.indexed_file);
    } else {
      const dataOffset = buf.readUInt16LE(at + INDEX_ENTRY.data_offset);
      const dataLength = buf.readUInt16LE(at + INDEX_ENTRY.data_length);
      if (dataOffset + dataLength > length) return `index entry at ${at - headerAt}: data runs past the entry`;
      data = buf.subarray(at + dataOffset, at + dataOffset + dataLength);
    }
    entries.push({ flags, key, fileRef, data, ...(childVcn === undefined ? {} : { childVcn }), isEnd: false });
    at += length;
  }
}

/**
 * An INDX block read from $INDEX_ALLOCATION: fixed up and checked (magic,
 * its own VCN, its header's sizes against the block size), then its entries.
 */
export function parseIndexBlock(raw: Buffer, vcn: number, kind: IndexKeyKind): { entries: IndexEntry[] } | { reason: string; torn?: { expected: number; found: number } } {
  const magic = raw.toString('latin1', 0, 4);
  if (magic !== MAGIC_INDX) return { reason: `no INDX magic (found ${JSON.stringify(magic)})` };
  const fixed = applyFixups(raw);
  if (!fixed.ok) {
    if (fixed.kind === 'header') return { reason: fixed.reason };
    return { reason: `incomplete multi-sector transfer in sector ${fixed.stride}`, torn: { expected: fixed.expected, found: fixed.found } };
  }
  const b = fixed.record;
  const ownVcn = b.readBigInt64LE(INDEX_BLOCK.index_block_vcn);
  if (ownVcn !== BigInt(vcn)) return { reason: `it says it is VCN ${ownVcn}, not ${vcn}` };
  const allocated = b.readUInt32LE(INDEX_BLOCK.index + INDEX_HEADER.allocated_size);
  if (allocated + INDEX_BLOCK.index !== b.length) return { reason: `its allocated size ${allocated} does not fit the ${b.length}-byte block` };
  const entriesOffset = b.readUInt32LE(INDEX_BLOCK.index + INDEX_HEADER.entries_offset);
  if (b.readUInt32LE(INDEX_BLOCK.index + INDEX_HEADER.index_length) <= entriesOffset) return { reason: 'it has no room for index entries' };
  const entries = parseIndexEntries(b, INDEX_BLOCK.index, kind);
  return typeof entries === 'string' ? { reason: entries } : { entries };
}
