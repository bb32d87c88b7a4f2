/**
 * One journal file, read from a BlockSource: its header, its objects
 * (checked as systemd's check_object_header/check_object do before any
 * field is trusted), the global ENTRY_ARRAY chain, DATA payloads
 * (decompressed, bounded), and lookups through the DATA and FIELD hash
 * tables.
 *
 * Nothing here trusts a count or an offset: every object lies inside
 * header_size + arena_size, on an 8-byte boundary, after the header; an
 * entry array chain must move forward through the file (which also ends any
 * cycle); hash chains are bounded by the file's object count; payloads by
 * `maxDataBytes`.
 *
 * Live files: journald writes objects first and links them afterwards, so
 * a consistent reader never meets an object past tail_object_offset or a
 * half-written one. When it does in a file whose state is ONLINE and the
 * file was opened with `live: true`, the error is retryable: refresh() and
 * read again. Opened without `live`, the iterator skips what it cannot read
 * as journalctl does.
 *
 * TAG objects (Forward Secure Sealing) are recognised and skipped, never
 * verified: verifying needs the sealing key, which a reader of a guest's
 * disk does not have.
 */
import { BoundedLru, type BlockSource } from '@guestlens/block';
import * as L from './layout.ts';
import { parseHeader, type JournalHeader } from './header.ts';
import { FileBytes } from './fileBytes.ts';
import { JournalCorruptError } from './errors.ts';
import { compressionOf, decompress, decompressSync, loadDecoder, type Compression } from './compression.ts';
import { jenkinsHash64, siphash24 } from './hash.ts';
import { u32, u64, u64n, id128, isAligned64 } from './numbers.ts';

export interface JournalFileOptions {
  /** How errors and warnings name this file (default: the source's name). */
  name?: string;
  /**
   * The file may be written while we read (a running guest): errors met in
   * an ONLINE file are retryable, and entries are checked against their
   * hashes (DATA hash, entry xor_hash) so that a torn read is never shown.
   */
  live?: boolean;
  /** Verify every DATA payload's hash and every entry's xor_hash (default: `live`). */
  verifyHashes?: boolean;
  /** Largest decompressed DATA payload accepted (default 64 MiB). */
  maxDataBytes?: number;
  /** Bytes of file windows kept (default 4 MiB). */
  cacheBytes?: number;
  /** Bytes of decompressed payloads kept (default 16 MiB). */
  dataCacheBytes?: number;
}

export const DEFAULT_MAX_DATA_BYTES = 64 * 1024 * 1024;

/** One ENTRY object, checked. Timestamps and seqnum as the file has them. */
export interface EntryObject {
  offset: number;
  seqnum: bigint;
  realtime: bigint;
  monotonic: bigint;
  /** 32 lowercase hex digits. */
  bootId: string;
  xorHash: bigint;
  /** Offsets of the entry's DATA objects, in item order. */
  items: number[];
  /** Per-item hashes (regular files only; compact files do not store them). */
  itemHashes?: bigint[];
}

interface EntryArray {
  offset: number;
  /** Global index of its first item. */
  start: number;
  /** Items it can hold. */
  capacity: number;
  next: number;
}

interface ObjectView {
  type: number;
  flags: number;
  size: number;
  buf: Buffer;
}

const MIN_OBJECT_SIZE = [L.OBJECT_HEADER_SIZE, 0, L.F_PAYLOAD, L.E_ITEMS, L.HT_ITEMS, L.HT_ITEMS, L.EA_ITEMS, L.TAG_OBJECT_SIZE];

export class JournalFile {
  header: JournalHeader;
  readonly name: string;
  readonly live: boolean;
  readonly verifyHashes: boolean;
  readonly maxDataBytes: number;
  private readonly bytes: FileBytes;
  private readonly dataCache: BoundedLru<number, Buffer>;
  /** Discovered arrays of the global chain, in chain order; `chainEnded` once the chain stops. */
  private arrays: EntryArray[] = [];
  private chainEnded = false;
  /** Problems tolerated while reading (a bad array ended the chain, ...), for the caller to show. */
  readonly warnings: string[] = [];
  private closed = false;

  private constructor(
    readonly source: BlockSource,
    header: JournalHeader,
    options: JournalFileOptions,
  ) {
    this.header = header;
    this.name = options.name ?? source.name;
    this.live = options.live ?? false;
    this.verifyHashes = options.verifyHashes ?? this.live;
    this.maxDataBytes = options.maxDataBytes ?? DEFAULT_MAX_DATA_BYTES;
    this.bytes = new FileBytes(source, options.cacheBytes ?? 4 * 1024 * 1024);
    this.dataCache = new BoundedLru<number, Buffer>(options.dataCacheBytes ?? 16 * 1024 * 1024, (b) => b.length + 64);
  }

  static async open(source: BlockSource, options: JournalFileOptions = {}): Promise<JournalFile> {
    const name = options.name ?? source.name;
    const header = await readHeader(source, name, options.live ?? false);
    const file = new JournalFile(source, header, options);
    if (header.declaredEntries > BigInt(header.nEntries)) {
      file.warnings.push(`the header claims ${header.declaredEntries} entries, more than its ${header.arenaSize}-byte arena can hold; at most ${header.nEntries} are read`);
    }
    await file.loadDecoders();
    return file;
  }

  /** The bytes objects may occupy: header_size + arena_size (checked against the file size at open). */
  get limit(): number {
    return Math.min(this.header.headerSize + this.header.arenaSize, this.source.size);
  }

  /** Errors in this file are retryable: it is being written and we were told it may be. */
  get retryable(): boolean {
    return this.live && this.header.state === 'online';
  }

  get entryCount(): number {
    return this.header.nEntries;
  }

  /**
   * Re-read the source and the header: entries appended since are found,
   * the chain's end is looked at again. Refreshes the source first.
   */
  async refresh(): Promise<void> {
    this.requireOpen();
    await this.source.refresh();
    this.bytes.clear();
    this.header = await readHeader(this.source, this.name, this.live);
    this.chainEnded = false;
    await this.loadDecoders();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.dataCache.clear();
    this.bytes.clear();
  }

  private requireOpen(): void {
    if (this.closed) throw new Error(`${this.name}: journal file already closed`);
  }

  private async loadDecoders(): Promise<void> {
    const f = this.header.incompatibleFlags;
    if (f & L.HEADER_INCOMPATIBLE_COMPRESSED_LZ4) await loadDecoder('lz4');
    if (f & L.HEADER_INCOMPATIBLE_COMPRESSED_ZSTD) await loadDecoder('zstd');
  }

  corrupt(what: string, offset?: number, data: Record<string, unknown> = {}): JournalCorruptError {
    return new JournalCorruptError(this.name, what, offset, this.retryable, data);
  }

  /** Read and check the object at `offset`; `type` 0 accepts any type. */
  async object(offset: number, type: number): Promise<ObjectView> {
    const hit = this.objectSync(offset, type);
    if (hit) return hit;
    const head = await this.bytes.read(offset, L.OBJECT_HEADER_SIZE);
    const size = u64(head, L.O_SIZE);
    this.checkHeader(offset, head[L.O_TYPE], size, type);
    await this.bytes.read(offset, size);
    const view = this.objectSync(offset, type);
    if (view) return view;
    // An object larger than a window: read it whole (checked again: a live file may change between reads).
    return this.checkedView(offset, type, await this.bytes.read(offset, size));
  }

  /**
   * The object at `offset` when its bytes are in the window cache, checked;
   * undefined when they must be read first. Throws for a bad object.
   */
  objectSync(offset: number, type: number): ObjectView | undefined {
    this.requireOpen();
    const what = L.OBJECT_TYPE_NAMES[type] ?? 'object';
    if (!Number.isSafeInteger(offset) || !isAligned64(offset)) throw this.corrupt(`${what} offset ${offset} is not 64-bit aligned`, offset);
    if (offset < this.header.headerSize) throw this.corrupt(`${what} offset ${offset} points into the file header`, offset);
    if (offset + L.OBJECT_HEADER_SIZE > this.limit) throw this.corrupt(`${what} offset ${offset} is past the end of the file's arena`, offset);
    if (this.retryable && offset > this.header.tailObjectOffset) {
      throw this.corrupt(`${what} at ${offset} lies past tail_object_offset ${this.header.tailObjectOffset}`, offset);
    }
    const head = this.bytes.peek(offset, L.OBJECT_HEADER_SIZE);
    if (!head) return undefined;
    const size = u64(head, L.O_SIZE);
    this.checkHeader(offset, head[L.O_TYPE], size, type);
    const buf = this.bytes.peek(offset, size);
    if (!buf) return undefined;
    return this.checkedView(offset, type, buf);
  }

  private checkedView(offset: number, type: number, buf: Buffer): ObjectView {
    const objectType = buf[L.O_TYPE];
    const size = u64(buf, L.O_SIZE);
    this.checkHeader(offset, objectType, size, type);
    if (buf.length < size) throw this.corrupt(`${L.OBJECT_TYPE_NAMES[type] ?? 'object'} at ${offset} changed while being read`, offset);
    this.checkObject(offset, objectType, size, buf);
    return { type: objectType, flags: buf[L.O_FLAGS], size, buf };
  }

  private checkHeader(offset: number, objectType: number, size: number, expected: number): void {
    const what = L.OBJECT_TYPE_NAMES[expected] ?? 'object';
    if (size === 0) throw this.corrupt(`${what} at ${offset} is uninitialized (size 0)`, offset);
    if (size < L.OBJECT_HEADER_SIZE) throw this.corrupt(`${what} at ${offset} is shorter than an object header`, offset);
    if (objectType === L.OBJECT_UNUSED) throw this.corrupt(`object at ${offset} has type 0 (unused)`, offset);
    if (expected !== L.OBJECT_UNUSED && objectType !== expected) {
      throw this.corrupt(`expected a ${what} object at ${offset}, found type ${L.OBJECT_TYPE_NAMES[objectType] ?? objectType}`, offset);
    }
    const min = objectType === L.OBJECT_DATA ? this.dataPayloadOffset : MIN_OBJECT_SIZE[objectType] ?? L.OBJECT_HEADER_SIZE;
    if (size < min) throw this.corrupt(`${what} at ${offset} is truncated (size ${size})`, offset);
    if (offset + size > this.limit) throw this.corrupt(`${what} at ${offset} of ${size} bytes runs past the end of the file's arena`, offset);
  }

  private checkObject(offset: number, type: number, size: number, o: Buffer): void {
    switch (type) {
      case L.OBJECT_DATA: {
        if ((u64(o, L.D_ENTRY_OFFSET) === 0) !== (u64(o, L.D_N_ENTRIES) === 0)) throw this.corrupt(`DATA at ${offset} has a bad n_entries`, offset);
        if (size <= this.dataPayloadOffset) throw this.corrupt(`DATA at ${offset} has no payload`, offset);
        for (const at of [L.D_NEXT_HASH_OFFSET, L.D_NEXT_FIELD_OFFSET, L.D_ENTRY_OFFSET, L.D_ENTRY_ARRAY_OFFSET]) {
          if (!isAligned64(u64(o, at))) throw this.corrupt(`DATA at ${offset} has an unaligned offset`, offset);
        }
        break;
      }
      case L.OBJECT_FIELD:
        if (size <= L.F_PAYLOAD) throw this.corrupt(`FIELD at ${offset} has no payload`, offset);
        if (!isAligned64(u64(o, L.F_NEXT_HASH_OFFSET)) || !isAligned64(u64(o, L.F_HEAD_DATA_OFFSET))) throw this.corrupt(`FIELD at ${offset} has an unaligned offset`, offset);
        break;
      case L.OBJECT_ENTRY: {
        const itemBytes = size - L.E_ITEMS;
        if (itemBytes % this.entryItemSize !== 0 || itemBytes === 0) throw this.corrupt(`ENTRY at ${offset} has a bad size ${size}`, offset);
        if (u64n(o, L.E_SEQNUM) === 0n) throw this.corrupt(`ENTRY at ${offset} has seqnum 0`, offset);
        const realtime = u64n(o, L.E_REALTIME);
        if (realtime === 0n || realtime >= L.TIMESTAMP_LIMIT) throw this.corrupt(`ENTRY at ${offset} has an invalid realtime timestamp`, offset);
        if (u64n(o, L.E_MONOTONIC) >= L.TIMESTAMP_LIMIT) throw this.corrupt(`ENTRY at ${offset} has an invalid monotonic timestamp`, offset);
        break;
      }
      case L.OBJECT_DATA_HASH_TABLE:
      case L.OBJECT_FIELD_HASH_TABLE: {
        const itemBytes = size - L.HT_ITEMS;
        if (itemBytes % L.HASH_ITEM_SIZE !== 0 || itemBytes === 0) throw this.corrupt(`hash table at ${offset} has a bad size ${size}`, offset);
        break;
      }
      case L.OBJECT_ENTRY_ARRAY: {
        const itemBytes = size - L.EA_ITEMS;
        if (itemBytes % this.arrayItemSize !== 0 || itemBytes === 0) throw this.corrupt(`ENTRY_ARRAY at ${offset} has a bad size ${size}`, offset);
        const next = u64(o, L.EA_NEXT_ENTRY_ARRAY_OFFSET);
        if (!isAligned64(next)) throw this.corrupt(`ENTRY_ARRAY at ${offset} has an unaligned next offset`, offset);
        // Arrays are appended: the next one lies further on. One that links back (a cycle) is bad, as journalctl 252 judges it.
        if (next !== 0 && next <= offset) throw this.corrupt(`ENTRY_ARRAY at ${offset} links back to ${next}`, offset);
        break;
      }
      case L.OBJECT_TAG:
        if (size !== L.TAG_OBJECT_SIZE) throw this.corrupt(`TAG at ${offset} has size ${size}, not ${L.TAG_OBJECT_SIZE}`, offset);
        if (u64n(o, 24) >= L.TIMESTAMP_LIMIT) throw this.corrupt(`TAG at ${offset} has an invalid epoch`, offset);
        break;
    }
  }

  get dataPayloadOffset(): number {
    return this.header.compact ? L.D_PAYLOAD_COMPACT : L.D_PAYLOAD_REGULAR;
  }

  get entryItemSize(): number {
    return this.header.compact ? L.E_ITEM_SIZE_COMPACT : L.E_ITEM_SIZE_REGULAR;
  }

  get arrayItemSize(): number {
    return this.header.compact ? 4 : 8;
  }

  /** The ENTRY object at `offset`, checked. */
  async entry(offset: number): Promise<EntryObject> {
    return this.entrySync(offset) ?? this.parseEntry(offset, await this.object(offset, L.OBJECT_ENTRY));
  }

  /** The ENTRY object at `offset` when its bytes are cached (undefined: call entry()). */
  entrySync(offset: number): EntryObject | undefined {
    const o = this.objectSync(offset, L.OBJECT_ENTRY);
    return o && this.parseEntry(offset, o);
  }

  private parseEntry(offset: number, o: ObjectView): EntryObject {
    const b = o.buf;
    const n = (o.size - L.E_ITEMS) / this.entryItemSize;
    const items: number[] = new Array(n);
    let itemHashes: bigint[] | undefined;
    if (this.header.compact) {
      for (let i = 0; i < n; i++) items[i] = u32(b, L.E_ITEMS + 4 * i);
    } else {
      itemHashes = new Array(n);
      for (let i = 0; i < n; i++) {
        items[i] = u64(b, L.E_ITEMS + 16 * i);
        itemHashes[i] = u64n(b, L.E_ITEMS + 16 * i + 8);
      }
    }
    return {
      offset,
      seqnum: u64n(b, L.E_SEQNUM),
      realtime: u64n(b, L.E_REALTIME),
      monotonic: u64n(b, L.E_MONOTONIC),
      bootId: id128(b, L.E_BOOT_ID),
      xorHash: u64n(b, L.E_XOR_HASH),
      items,
      itemHashes,
    };
  }

  /**
   * The payload of the DATA object at `offset` ("FIELD=value"), decompressed.
   * The returned buffer may be shared with the cache: do not modify it.
   */
  async data(offset: number): Promise<Buffer> {
    return this.dataSync(offset) ?? this.decodeData(offset, await this.object(offset, L.OBJECT_DATA));
  }

  /** The payload when it is cached or can be decoded from cached bytes without waiting (undefined: call data()). */
  dataSync(offset: number): Buffer | undefined {
    // peek, not get: these are hit several times per entry, and recency bookkeeping would cost more than it saves
    const cached = this.dataCache.peek(offset);
    if (cached) return cached;
    const o = this.objectSync(offset, L.OBJECT_DATA);
    if (!o) return undefined;
    const kind = compressionOf(o.flags);
    if (kind === 'xz') return undefined;
    const out = this.decodeData(offset, o);
    return out instanceof Promise ? undefined : out;
  }

  private decodeData(offset: number, o: ObjectView): Buffer | Promise<Buffer> {
    const kind = compressionOf(o.flags);
    if (kind === undefined) throw this.corrupt(`DATA at ${offset} has more than one compression flag (0x${o.flags.toString(16)})`, offset);
    const raw = o.buf.subarray(this.dataPayloadOffset, o.size);
    if (kind === 'none') {
      if (raw.length > this.maxDataBytes) throw this.corrupt(`DATA at ${offset} is larger than the limit of ${this.maxDataBytes} bytes`, offset);
      return this.keepData(offset, o, raw); // a view of a window: windows are never written, only dropped
    }
    const sync = decompressSync(kind, raw, this.maxDataBytes, this.name, offset);
    if (sync) return this.keepData(offset, o, sync);
    return decompress(kind, Buffer.from(raw), this.maxDataBytes, this.name, offset).then((p) => this.keepData(offset, o, p));
  }

  private keepData(offset: number, o: ObjectView, payload: Buffer): Buffer {
    if (this.verifyHashes) {
      const stored = u64n(o.buf, L.D_HASH);
      if (this.hashOf(payload) !== stored) throw this.corrupt(`DATA at ${offset} does not match its hash`, offset);
    }
    // Only values several entries share are worth keeping (hostnames, units, priorities);
    // most messages are referenced once and would only push those out.
    if (u64(o.buf, L.D_N_ENTRIES) > 1) this.dataCache.set(offset, payload);
    return payload;
  }

  /** The compression of the DATA object at `offset` (for diagnostics and tests). */
  async dataCompression(offset: number): Promise<Compression | undefined> {
    const o = await this.object(offset, L.OBJECT_DATA);
    return compressionOf(o.flags);
  }

  /** The hash DATA and FIELD objects of this file carry for `payload`. */
  hashOf(payload: Uint8Array): bigint {
    return this.header.keyedHash ? siphash24(this.header.fileIdBytes, payload) : jenkinsHash64(payload);
  }

  /**
   * Check an entry against its payloads: each item's DATA hash (regular files
   * store them) and the xor of the payloads' lookup3 hashes. A torn entry in
   * a live file fails here instead of being shown with the wrong fields.
   */
  async verifyEntry(e: EntryObject, payloads: (Buffer | undefined)[]): Promise<void> {
    let xor = 0n;
    for (let i = 0; i < payloads.length; i++) {
      const p = payloads[i];
      if (!p) return; // an unreadable item: journalctl skips it too; nothing to compare
      xor ^= jenkinsHash64(p);
      if (e.itemHashes && e.itemHashes[i] !== this.hashOf(p)) throw this.corrupt(`ENTRY at ${e.offset}: item ${i} does not match its DATA object's hash`, e.offset);
    }
    if (xor !== e.xorHash) throw this.corrupt(`ENTRY at ${e.offset} does not match its xor_hash`, e.offset);
  }

  // --- the global entry array chain ---------------------------------------------------------

  /**
   * The offset of the entry with global index `index` (0 ≤ index < n_entries),
   * or undefined when the chain ends before it (a bad or missing array).
   * Throws a JournalCorruptError for a bad item (the caller may skip it).
   */
  async entryOffset(index: number): Promise<number | undefined> {
    if (index < 0 || index >= this.header.nEntries) return undefined;
    const array = await this.arrayFor(index);
    if (!array) return undefined;
    const at = array.offset + L.EA_ITEMS + (index - array.start) * this.arrayItemSize;
    const b = await this.bytes.read(at, this.arrayItemSize);
    const p = this.header.compact ? u32(b, 0) : u64(b, 0);
    if (p === 0) throw this.corrupt(`entry array at ${array.offset}: item ${index - array.start} is empty`, array.offset);
    return p;
  }

  /** entryOffset() when the array is known and its item cached (undefined: call entryOffset()). */
  entryOffsetSync(index: number): number | undefined {
    if (index < 0 || index >= this.header.nEntries) return undefined;
    const array = this.knownArray(index);
    if (!array) return undefined;
    const b = this.bytes.peek(array.offset + L.EA_ITEMS + (index - array.start) * this.arrayItemSize, this.arrayItemSize);
    if (!b) return undefined;
    const p = this.header.compact ? u32(b, 0) : u64(b, 0);
    if (p === 0) throw this.corrupt(`entry array at ${array.offset}: item ${index - array.start} is empty`, array.offset);
    return p;
  }

  private lastArray: EntryArray | undefined;

  private knownArray(index: number): EntryArray | undefined {
    const last = this.lastArray;
    if (last && index >= last.start && index < last.start + last.capacity) return last;
    let lo = 0;
    let hi = this.arrays.length - 1;
    while (lo <= hi) {
      const mid = Math.floor((lo + hi) / 2);
      const a = this.arrays[mid];
      if (index < a.start) hi = mid - 1;
      else if (index >= a.start + a.capacity) lo = mid + 1;
      else return (this.lastArray = a);
    }
    return undefined;
  }

  private async arrayFor(index: number): Promise<EntryArray | undefined> {
    const known = this.knownArray(index);
    if (known) return known;
    // Binary search among the arrays found so far.
    let lo = 0;
    let hi = this.arrays.length - 1;
    while (lo <= hi) {
      const mid = Math.floor((lo + hi) / 2);
      const a = this.arrays[mid];
      if (index < a.start) hi = mid - 1;
      else if (index >= a.start + a.capacity) lo = mid + 1;
      else return a;
    }
    // Not found: extend the chain (bounded: each array holds ≥ 1 item and index < n_entries).
    for (;;) {
      const last = this.arrays.at(-1);
      if (last && index < last.start + last.capacity) return index >= last.start ? last : undefined;
      if (this.chainEnded) return undefined;
      let next: number;
      if (!last) {
        next = this.header.entryArrayOffset;
      } else {
        if (last.next === 0) {
          // Written later (a live file): look at the array's next pointer again.
          const o = await this.readArray(last.offset);
          if (!o) return undefined;
          last.next = u64(o.buf, L.EA_NEXT_ENTRY_ARRAY_OFFSET);
        }
        next = last.next;
      }
      if (next === 0) {
        if (!this.live || this.header.state !== 'online') this.endChain(`the entry array chain ends before entry ${index} of ${this.header.nEntries}`);
        else if (this.retryable) throw this.corrupt(`the entry array chain ends before entry ${index} of ${this.header.nEntries}`);
        return undefined;
      }
      if (last && next <= last.offset) {
        this.endChain(`entry array at ${last.offset} links back to ${next} (a cycle or corruption); later entries are not read`);
        if (this.retryable) throw this.corrupt(`entry array at ${last.offset} links back to ${next}`, last.offset);
        return undefined;
      }
      const o = await this.readArray(next);
      if (!o) return undefined;
      const capacity = (o.size - L.EA_ITEMS) / this.arrayItemSize;
      this.arrays.push({ offset: next, start: last ? last.start + last.capacity : 0, capacity, next: u64(o.buf, L.EA_NEXT_ENTRY_ARRAY_OFFSET) });
    }
  }

  private async readArray(offset: number): Promise<ObjectView | undefined> {
    try {
      return await this.object(offset, L.OBJECT_ENTRY_ARRAY);
    } catch (err) {
      if (!(err instanceof JournalCorruptError) || err.retryable) throw err;
      // Going forward, journalctl treats a bad array as the end of the chain.
      this.endChain(err.message);
      return undefined;
    }
  }

  private endChain(why: string): void {
    if (!this.chainEnded) this.warnings.push(why);
    this.chainEnded = true;
  }

  /**
   * sd-journal's generic_array_bisect by entry offset over the global chain
   * (going down): the index journalctl steps from when the chain's items
   * are not in order (a damaged file). Reads items only, not entries.
   */
  async bisectOffset(needle: number): Promise<number | undefined> {
    let n = this.header.nEntries;
    let t = 0;
    for (let k = 0; n > 0; ) {
      const array = await this.arrayFor(t);
      if (!array || array.start !== t) return undefined;
      const item = async (i: number) => {
        const b = await this.bytes.read(array.offset + L.EA_ITEMS + i * this.arrayItemSize, this.arrayItemSize);
        return this.header.compact ? u32(b, 0) : u64(b, 0);
      };
      k = array.capacity;
      let right = Math.min(k, n);
      if (right <= 0) return undefined;
      const last = await item(right - 1);
      if (last <= 0) {
        n = t + right - 1 - t; // cut short at the bad item, as sd-journal does
        continue;
      }
      if (last >= needle) {
        let left = 0;
        right -= 1;
        for (;;) {
          if (left === right) return t + left;
          const mid = Math.floor((left + right) / 2);
          const v = await item(mid);
          if (v <= 0) {
            right = mid;
            n = mid;
            continue;
          }
          if (v >= needle) right = mid;
          else left = mid + 1;
        }
      }
      if (k >= n) return undefined;
      n -= k;
      t += k;
    }
    return undefined;
  }

  // --- hash table lookups ---------------------------------------------------------------------

  /** The offset of the DATA object whose payload is exactly `payload`, found through the data hash table. */
  async findData(payload: Buffer): Promise<number | undefined> {
    const hash = this.hashOf(payload);
    for await (const { offset, buf } of this.hashChain(this.header.dataHashTableOffset, this.header.dataHashTableSize, hash, L.OBJECT_DATA, L.D_NEXT_HASH_OFFSET)) {
      if (u64n(buf, L.D_HASH) !== hash) continue;
      const p = await this.data(offset);
      if (p.equals(payload)) return offset;
    }
    return undefined;
  }

  /** Every distinct "FIELD=value" payload of a field, through its FIELD object's data chain. */
  async *fieldValues(field: string): AsyncGenerator<Buffer> {
    const name = Buffer.from(field, 'latin1');
    const hash = this.hashOf(name);
    let head = 0;
    for await (const { offset, buf } of this.hashChain(this.header.fieldHashTableOffset, this.header.fieldHashTableSize, hash, L.OBJECT_FIELD, L.F_NEXT_HASH_OFFSET)) {
      if (u64n(buf, L.F_HASH) !== hash) continue;
      if (buf.subarray(L.F_PAYLOAD, u64(buf, L.O_SIZE)).equals(name)) {
        head = u64(buf, L.F_HEAD_DATA_OFFSET);
        void offset;
        break;
      }
    }
    const seen = new Set<number>();
    for (let p = head; p !== 0; ) {
      if (seen.has(p) || seen.size > this.header.nObjects) break; // a loop in the chain
      seen.add(p);
      const o = await this.object(p, L.OBJECT_DATA);
      yield await this.data(p);
      p = u64(o.buf, L.D_NEXT_FIELD_OFFSET);
    }
  }

  private async *hashChain(tableOffset: number, tableSize: number, hash: bigint, type: number, nextAt: number): AsyncGenerator<{ offset: number; buf: Buffer }> {
    const buckets = Math.floor(tableSize / L.HASH_ITEM_SIZE);
    if (buckets === 0 || !isAligned64(tableOffset) || tableOffset + buckets * L.HASH_ITEM_SIZE > this.limit || tableOffset < this.header.headerSize) return;
    const bucket = Number(hash % BigInt(buckets));
    const item = await this.bytes.read(tableOffset + bucket * L.HASH_ITEM_SIZE, L.HASH_ITEM_SIZE);
    const seen = new Set<number>();
    for (let p = u64(item, 0); p !== 0; ) {
      if (seen.has(p) || seen.size > this.header.nObjects) return; // a loop in the chain
      seen.add(p);
      const o = await this.object(p, type);
      yield { offset: p, buf: o.buf };
      p = u64(o.buf, nextAt);
    }
  }
}

async function readHeader(source: BlockSource, name: string, live: boolean): Promise<JournalHeader> {
  if (source.size < L.HEADER_SIZE_MIN) throw new JournalCorruptError(name, `only ${source.size} bytes: too short for a journal header`, 0, false);
  const buf = await source.read(0, Math.min(L.HEADER_READ_BYTES, source.size));
  return parseHeader(buf, source.size, name, live);
}
