/**
 * A registry hive opened read-only from its bytes: keys by path (compared
 * case-insensitively, as Windows compares them), their subkeys, values,
 * class names, security and last-write times.
 *
 * Keys are small objects holding their parsed key node; subkeys and values
 * are read when asked for. Every structure is bounded (limits), a subkey
 * that is its own ancestor or appears twice is an error, not a loop, and
 * damage Windows would tolerate (a key node whose parent pointer or subkey
 * count disagrees with the tree) becomes a warning on the hive.
 *
 * Dirty hives are read as they are on disk, without replaying their
 * transaction logs; `dirty` and `dirtyReasons` say so.
 */
import type { BlockSource } from '@guestlens/block';
import { BASE_BLOCK_SIZE, HBINS_START, KEY_FLAGS, REG } from './layout.ts';
import { parseBaseBlock, dirtyReasons, type BaseBlock } from './baseBlock.ts';
import { Cells } from './cells.ts';
import { BufferStorage, SourceStorage, type HiveStorage } from './storage.ts';
import { readKeyNode, hasCell, type KeyNode } from './keyNode.ts';
import { readSubkeyList, readValueList } from './lists.ts';
import { readKeyValue, readValueData, type KeyValueRecord } from './keyValue.ts';
import { readKeySecurity, type KeySecurity } from './security.ts';
import { decodeData, typeName, type RegData, type RegTypeName } from './valueData.ts';
import { isAscii, nameHash, namesEqual } from './names.ts';
import { filetimeToTimestamp, type Timestamp } from './filetime.ts';
import { RegfChecksumError, RegfValueTypeError, quoteName } from './errors.ts';
import { summariseLog, type TransactionLogInfo, type TransactionLogInput } from './transactionLog.ts';

export interface HiveLimits {
  /** Largest cell we read (a value list, a subkey list, a value's data cell). */
  maxCellBytes: number;
  /** Largest value data we assemble (big data included). */
  maxValueBytes: number;
  /** Most subkeys of one key. */
  maxSubkeys: number;
  /** Most values of one key. */
  maxValues: number;
  /** Deepest nesting of keys (Windows allows 512 levels). */
  maxDepth: number;
  /** Page cache for hives read from a BlockSource, in bytes. */
  cacheBytes: number;
  /** Warnings kept on the hive (the count beyond is still reported). */
  maxWarnings: number;
}

export const DEFAULT_HIVE_LIMITS: Readonly<HiveLimits> = {
  maxCellBytes: 16 << 20,
  maxValueBytes: 16 << 20,
  maxSubkeys: 500_000,
  maxValues: 500_000,
  maxDepth: 512,
  cacheBytes: 16 << 20,
  maxWarnings: 100,
};

export type HiveInput = Buffer | Uint8Array | BlockSource;

export interface OpenHiveOptions {
  /** How messages name the hive; default: the source's name, or "registry hive" for a Buffer. */
  name?: string;
  /**
   * The hive is on a live guest's disk: damage is `retryable`, and a base
   * block checksum mismatch (a torn write) is an error rather than dirt.
   */
  live?: boolean;
  limits?: Partial<HiveLimits>;
  /** The hive's transaction logs found beside it (SYSTEM.LOG1, SYSTEM.LOG2, ...), to be summarised (not replayed). */
  logs?: TransactionLogInput[];
}

export async function openHive(input: HiveInput, options: OpenHiveOptions = {}): Promise<Hive> {
  let storage: HiveStorage;
  let name = options.name;
  const limits: HiveLimits = { ...DEFAULT_HIVE_LIMITS, ...options.limits };
  if (input instanceof Uint8Array) {
    storage = new BufferStorage(Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength));
    name ??= 'registry hive';
  } else {
    storage = new SourceStorage(input, limits.cacheBytes);
    name ??= input.name;
  }
  const hive = new Hive(name, storage, limits, options.live ?? false);
  await hive.load(options.logs ?? []);
  return hive;
}

export class Hive {
  private bb!: BaseBlock;
  private cellsOf!: Cells;
  private reasons: string[] = [];
  private logs: TransactionLogInfo[] = [];
  private readonly warningList: string[] = [];
  private warningsDropped = 0;
  private logInputs: TransactionLogInput[] = [];

  /** @internal use openHive() */
  constructor(
    readonly name: string,
    private readonly storage: HiveStorage,
    readonly limits: Readonly<HiveLimits>,
    readonly live: boolean,
  ) {}

  /** @internal */
  async load(logs: TransactionLogInput[]): Promise<void> {
    this.logInputs = logs;
    const size = this.storage.size;
    const head = await this.storage.read(0, Math.min(BASE_BLOCK_SIZE, size));
    const bb = parseBaseBlock(this.name, head, size);
    if (this.live && bb.checksum !== bb.computedChecksum) throw new RegfChecksumError(this.name, bb.checksum, bb.computedChecksum, { retryable: true });
    this.bb = bb;
    this.reasons = dirtyReasons(bb);
    this.warningList.length = 0;
    this.warningsDropped = 0;
    if (HBINS_START + bb.hiveBinsDataSize > size) {
      this.warn(`the file has ${size} bytes, less than the ${HBINS_START + bb.hiveBinsDataSize} its base block declares: the hive is truncated, keys past the end cannot be read`);
    }
    this.cellsOf = new Cells({
      hive: this.name,
      storage: this.storage,
      hiveBinsDataSize: bb.hiveBinsDataSize,
      maxCellBytes: this.limits.maxCellBytes,
      live: this.live,
      dirty: this.reasons.length > 0,
    });
    this.logs = [];
    for (const log of logs) {
      const info = await summariseLog(log, bb, this.reasons.length > 0);
      this.logs.push(info);
      if (info.pending) {
        this.reasons.push(
          info.format === 'new'
            ? `${log.name} holds ${info.pendingEntries} log entries newer than the primary file (not replayed)`
            : `${log.name} holds changes not yet written to the primary file (not replayed)`,
        );
      }
    }
  }

  /** The parsed base block. */
  get baseBlock(): Readonly<BaseBlock> {
    return this.bb;
  }

  /** "1.5" */
  get version(): string {
    return `${this.bb.majorVersion}.${this.bb.minorVersion}`;
  }

  get lastWritten(): Timestamp {
    return filetimeToTimestamp(this.bb.lastWritten);
  }

  /**
   * Whether Windows would consider the hive dirty (its sequence numbers
   * differ, or its base block checksum is wrong): the data read is the
   * primary file as it is, without what the transaction logs hold.
   */
  get dirty(): boolean {
    return this.reasons.length > 0;
  }

  get dirtyReasons(): readonly string[] {
    return this.reasons;
  }

  /** What the transaction logs given to openHive hold (summaries; they are never replayed). */
  get transactionLogs(): readonly TransactionLogInfo[] {
    return this.logs;
  }

  /** Damage tolerated so far (grows as more of the hive is read). */
  get warnings(): readonly string[] {
    return this.warningsDropped ? [...this.warningList, `(${this.warningsDropped} more warnings)`] : this.warningList;
  }

  /** @internal */
  warn(message: string): void {
    if (this.warningList.includes(message)) return;
    if (this.warningList.length < this.limits.maxWarnings) this.warningList.push(message);
    else this.warningsDropped++;
  }

  /** @internal */
  get cells(): Cells {
    return this.cellsOf;
  }

  async root(): Promise<RegistryKey> {
    const node = await readKeyNode(this.cellsOf, this.bb.rootCell, 'root key node');
    if (!(node.flags & KEY_FLAGS.hiveEntry)) this.warn(`the root key node (cell 0x${this.bb.rootCell.toString(16)}) lacks the hive-entry flag`);
    return new RegistryKey(this, node, undefined);
  }

  /**
   * The key at `path` below the root ("Microsoft\Windows NT\CurrentVersion",
   * a leading backslash optional, or the names as an array for names that
   * hold a backslash), compared case-insensitively; undefined when absent.
   */
  async key(path: string | readonly string[]): Promise<RegistryKey | undefined> {
    let key: RegistryKey | undefined = await this.root();
    for (const part of splitPath(path)) {
      key = await key.subkey(part);
      if (!key) return undefined;
    }
    return key;
  }

  /** The value `name` of the key at `path`; undefined when either is absent. */
  async value(path: string | readonly string[], name: string): Promise<RegistryValue | undefined> {
    return (await this.key(path))?.value(name);
  }

  /**
   * Every key below `from` (default the root), `from` first, depth first in
   * stored order. A key reached twice (a cycle, or a subtree shared by two
   * parents) is an error.
   */
  async *walk(from?: RegistryKey): AsyncGenerator<RegistryKey> {
    const start = from ?? (await this.root());
    const visited = new Set<number>([start.cell]);
    const stack: RegistryKey[] = [start];
    while (stack.length) {
      const key = stack.pop()!;
      yield key;
      const children = await key.subkeys();
      for (const child of children) {
        if (visited.has(child.cell)) {
          throw this.cellsOf.corrupt(`subkey list of ${key.path}`, child.cell, `the key node of ${child.path} was already reached by another path`);
        }
        visited.add(child.cell);
      }
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
    }
  }

  /** Forget cached pages and bins and read the base block again (a live hive changed under us); keys read before must be looked up again. */
  async refresh(): Promise<void> {
    await this.storage.refresh();
    await this.load(this.logInputs);
  }
}

export function splitPath(path: string | readonly string[]): string[] {
  if (typeof path !== 'string') return [...path];
  return path.split('\\').filter((part) => part !== '');
}

export class RegistryKey {
  /** Names from the root down ([] for the root). */
  readonly pathParts: readonly string[];
  readonly depth: number;

  /** @internal */
  constructor(
    readonly hive: Hive,
    private readonly node: KeyNode,
    readonly parent: RegistryKey | undefined,
  ) {
    this.pathParts = parent ? [...parent.pathParts, node.name] : [];
    this.depth = parent ? parent.depth + 1 : 0;
  }

  /** The key's name (the root's is whatever Windows stored, e.g. "CMI-CreateHive{...}" or "ROOT"). */
  get name(): string {
    return this.node.name;
  }

  /** "\Microsoft\Windows NT" ("\" for the root), as hivexregedit --export names keys. */
  get path(): string {
    return `\\${this.pathParts.join('\\')}`;
  }

  /** Cell index of the key node. */
  get cell(): number {
    return this.node.cell;
  }

  /** The name as stored: Latin-1 bytes when `compressedName`, else UTF-16LE. */
  get rawName(): Buffer {
    return this.node.rawName;
  }

  get compressedName(): boolean {
    return this.node.compressedName;
  }

  /** KEY_* flags of the key node. */
  get flags(): number {
    return this.node.flags;
  }

  /** A symbolic link key (its target is the REG_LINK value "SymbolicLinkValue"; not followed). */
  get isSymbolicLink(): boolean {
    return (this.node.flags & KEY_FLAGS.symLink) !== 0;
  }

  /** FILETIME of the last write (100 ns units since 1601). */
  get lastWrittenFiletime(): bigint {
    return this.node.lastWritten;
  }

  get lastWritten(): Timestamp {
    return filetimeToTimestamp(this.node.lastWritten);
  }

  /** Subkey count the key node declares. */
  get subkeyCount(): number {
    return this.node.subkeyCount;
  }

  /** Value count the key node declares. */
  get valueCount(): number {
    return this.node.valueCount;
  }

  /** The subkeys, in stored order (sorted by upper-cased name in hives Windows wrote). */
  async subkeys(): Promise<RegistryKey[]> {
    const nodes = await this.subkeyNodes();
    return nodes.map((node) => this.child(node));
  }

  /** The subkey `name` (case-insensitive), or undefined. */
  async subkey(name: string): Promise<RegistryKey | undefined> {
    if (this.node.subkeyCount === 0 || !hasCell(this.node.subkeyList)) return undefined;
    const cells = this.hive.cells;
    const entries = await readSubkeyList(cells, this.node.subkeyList, this.listStructure(), this.hive.limits.maxSubkeys);
    // Hash leaves let us skip most key nodes; the hash is certain only for ASCII names (upper case elsewhere is Windows' table).
    // If no hashed candidate matches (a tool that wrote other hashes), every entry is compared, so a hash is never the reason a key is missed.
    const hash = isAscii(name) ? nameHash(name) : undefined;
    const tried = new Set<number>();
    if (hash !== undefined) {
      for (const entry of entries) {
        if (entry.hash === undefined || entry.hash !== hash) continue;
        tried.add(entry.cell);
        const node = await this.readChild(entry.cell);
        if (namesEqual(node.name, name)) return this.child(node);
      }
    }
    for (const entry of entries) {
      if (tried.has(entry.cell)) continue;
      const node = await this.readChild(entry.cell);
      if (namesEqual(node.name, name)) return this.child(node);
    }
    return undefined;
  }

  /** The key at `path` below this one, or undefined. */
  async descendant(path: string | readonly string[]): Promise<RegistryKey | undefined> {
    let key: RegistryKey | undefined = this;
    for (const part of splitPath(path)) {
      key = await key.subkey(part);
      if (!key) return undefined;
    }
    return key;
  }

  async values(): Promise<RegistryValue[]> {
    const records = await this.valueRecords();
    return records.map((vk) => new RegistryValue(this, vk));
  }

  /** The value `name` (case-insensitive; "" is the default value), or undefined. */
  async value(name: string): Promise<RegistryValue | undefined> {
    for (const vk of await this.valueRecords()) if (namesEqual(vk.name, name)) return new RegistryValue(this, vk);
    return undefined;
  }

  /** The key's class name, when it has one (few keys do). */
  async className(): Promise<string | undefined> {
    if (!hasCell(this.node.classNameCell) || this.node.classLength === 0) return undefined;
    const structure = `class name of ${this.path}`;
    const cells = this.hive.cells;
    const have = await cells.cellLength(this.node.classNameCell, structure);
    if (this.node.classLength > have) throw cells.corrupt(structure, this.node.classNameCell, `${this.node.classLength} bytes of class name do not fit in the cell (${have} bytes)`);
    const data = await cells.cell(this.node.classNameCell, structure, this.node.classLength);
    return data.toString('utf16le', 0, data.length & ~1);
  }

  /** The key's security record, when it has one. */
  async security(): Promise<KeySecurity | undefined> {
    if (!hasCell(this.node.security)) return undefined;
    return readKeySecurity(this.hive.cells, this.node.security, `security of ${this.path}`);
  }

  private listStructure(): string {
    return `subkey list of ${this.path}`;
  }

  private child(node: KeyNode): RegistryKey {
    return new RegistryKey(this.hive, node, this);
  }

  private async subkeyNodes(): Promise<KeyNode[]> {
    if (this.node.subkeyCount === 0 || !hasCell(this.node.subkeyList)) return [];
    const entries = await readSubkeyList(this.hive.cells, this.node.subkeyList, this.listStructure(), this.hive.limits.maxSubkeys);
    if (entries.length !== this.node.subkeyCount) {
      this.hive.warn(`key ${this.path}: its key node declares ${this.node.subkeyCount} subkeys, its subkey list holds ${entries.length}`);
    }
    const nodes: KeyNode[] = [];
    for (const entry of entries) nodes.push(await this.readChild(entry.cell));
    return nodes;
  }

  private async readChild(cell: number): Promise<KeyNode> {
    const cells = this.hive.cells;
    if (this.depth + 1 > this.hive.limits.maxDepth) {
      throw cells.corrupt(this.listStructure(), this.node.subkeyList, `keys nest deeper than ${this.hive.limits.maxDepth} levels`);
    }
    for (let k: RegistryKey | undefined = this; k; k = k.parent) {
      if (k.cell === cell) throw cells.corrupt(this.listStructure(), this.node.subkeyList, `it lists ${k.path} (cell 0x${cell.toString(16)}), an ancestor of the key: a cycle`);
    }
    const node = await readKeyNode(cells, cell, `key node of a subkey of ${this.path}`);
    if (node.parent !== this.node.cell) {
      this.hive.warn(`key ${this.path}\\${node.name}: its key node names cell 0x${node.parent.toString(16)} as its parent, not 0x${this.node.cell.toString(16)}`);
    }
    return node;
  }

  private valueRecordsOnce?: Promise<KeyValueRecord[]>;

  /** The key's value records, read once per key object (value lookups by name come in runs). */
  private valueRecords(): Promise<KeyValueRecord[]> {
    if (!this.valueRecordsOnce) {
      const loading = this.readValueRecords();
      this.valueRecordsOnce = loading;
      // A failure is not remembered: the next call reads again (a live hive may have been mid-write).
      loading.catch(() => {
        if (this.valueRecordsOnce === loading) this.valueRecordsOnce = undefined;
      });
    }
    return this.valueRecordsOnce;
  }

  private async readValueRecords(): Promise<KeyValueRecord[]> {
    if (this.node.valueCount === 0 || !hasCell(this.node.valueList)) return [];
    const structure = `value list of ${this.path}`;
    const cells = this.hive.cells;
    const list = await readValueList(cells, this.node.valueList, this.node.valueCount, structure, this.hive.limits.maxValues);
    const out: KeyValueRecord[] = [];
    for (const cell of list) out.push(await readKeyValue(cells, cell, `a value of ${this.path}`));
    return out;
  }
}

export class RegistryValue {
  /** @internal */
  constructor(
    readonly key: RegistryKey,
    private readonly record: KeyValueRecord,
  ) {}

  /** The value's name ("" for the key's default value). */
  get name(): string {
    return this.record.name;
  }

  get rawName(): Buffer {
    return this.record.rawName;
  }

  get compressedName(): boolean {
    return this.record.compressedName;
  }

  /** REG_* type code. */
  get type(): number {
    return this.record.type;
  }

  /** "REG_SZ", or "0x…" for an unknown type. */
  get typeName(): RegTypeName | `0x${string}` {
    return typeName(this.record.type);
  }

  get dataLength(): number {
    return this.record.dataLength;
  }

  /** Cell index of the vk record. */
  get cell(): number {
    return this.record.cell;
  }

  private structure(): string {
    return `value ${quoteName(this.name)} of ${this.key.path}`;
  }

  /** The data bytes, exactly as stored. */
  async bytes(): Promise<Buffer> {
    return readValueData(this.key.hive.cells, this.record, this.structure(), this.key.hive.limits.maxValueBytes);
  }

  /** The data decoded by type (bytes when the data does not fit its type). */
  async data(): Promise<RegData> {
    return decodeData(this.record.type, await this.bytes());
  }

  /** REG_SZ, REG_EXPAND_SZ (unexpanded) or REG_LINK as a string; other types are a RegfValueTypeError. */
  async string(): Promise<string> {
    const d = await this.data();
    if (d.kind !== 'string') throw this.typeError('a string');
    return d.value;
  }

  /** REG_MULTI_SZ as its strings (a REG_SZ as one string). */
  async strings(): Promise<string[]> {
    const d = await this.data();
    if (d.kind === 'strings') return d.value;
    if (d.kind === 'string' && this.record.type !== REG.LINK) return [d.value];
    throw this.typeError('a list of strings');
  }

  /** REG_DWORD or REG_DWORD_BIG_ENDIAN of 4 bytes. */
  async dword(): Promise<number> {
    const d = await this.data();
    if (d.kind !== 'dword') throw this.typeError('a 32-bit number', d);
    return d.value;
  }

  /** REG_QWORD of 8 bytes. */
  async qword(): Promise<bigint> {
    const d = await this.data();
    if (d.kind !== 'qword') throw this.typeError('a 64-bit number', d);
    return d.value;
  }

  private typeError(wanted: string, d?: RegData): RegfValueTypeError {
    const why = d?.kind === 'bytes' && d.reason ? d.reason : `it is ${this.typeName}`;
    return new RegfValueTypeError(this.key.hive.name, this.key.path, this.name, `${why}, not ${wanted}`);
  }
}

