/**
 * The FAT12/16/32 driver behind the Filesystem interface, read-only. Opening
 * does what the kernel does when it mounts: reads and checks the boot
 * sector (and FAT32's FSInfo sector) and the root directory, and fails where
 * the mount would fail. Everything else is read on demand: FAT sectors
 * through the sector cache, directories whole (they are small: FAT stops at
 * 65536 entries), file data straight from the clusters. refresh() throws all
 * of it away and opens again.
 */
import { BoundedLru, type BlockSource } from '@guestlens/block';
import { readRuns, type BlockRun } from '../runs.ts';
import type { DirEntry, FileExtent, FileStat, Filesystem, InodeEntry, InodeEnumerationOptions, StatFs } from '../filesystem.ts';
import { readBootSector, type BootSector } from './bootSector.ts';
import { ClusterChain } from './chain.ts';
import { parseDirectory, type ParsedDirectory } from './directory.ts';
import { FatError } from './errors.ts';
import { FatTable } from './fatTable.ts';
import { ATTR, DELETED_FLAG, DIR_ENTRY_SIZE, NO_NAME, formatSerial } from './layout.ts';
import { ROOT_INO, inoOfPosition, isDirectory, parseShortEntry, positionOfIno, rootStat, statOfEntry, type ShortEntry } from './inode.ts';
import { cp437String } from './shortName.ts';
import { computeStatfs } from './statfs.ts';
import { DEFAULT_LIMITS, FatVolume, type FatLimits } from './volume.ts';

export interface FatOpenOptions {
  /** The image may be written while we read (a running guest): corruption is reported as retryable. */
  live?: boolean;
  limits?: Partial<FatLimits>;
  /** Read the BPB from FAT32's backup boot sector (the kernel never does; for a damaged sector 0). */
  useBackupBootSector?: boolean;
}

/** A directory, read whole. */
interface Directory {
  parsed: ParsedDirectory;
  /** Size in bytes, as stat shows it. */
  size: number;
  /** Byte position on the volume of an offset in the directory. */
  positionOf(offset: number): number;
}

/** An inode that is a directory entry. */
interface EntryInode {
  ino: number;
  position: number;
  entry: ShortEntry;
  deleted: boolean;
}

/** A deleted entry of a directory, for the forensic view. */
export interface FatDeletedDirEntry {
  /** The name with its lost first character shown as '_', or the long name its slots still hold. */
  name: string;
  ino: number;
  stat: FileStat;
}

interface State {
  vol: FatVolume;
  fat: FatTable;
  root: Directory;
  /** Directories read, bounded by their bytes. */
  directories: BoundedLru<number, Directory>;
  /** Directories being read, so concurrent readers share one read. */
  loading: Map<number, Promise<Directory>>;
  chains: BoundedLru<number, ClusterChain>;
  freeClusters: Promise<number> | undefined;
}

export class FatFilesystem implements Filesystem {
  readonly type = 'vfat';
  readonly rootIno = ROOT_INO;
  private state!: State;

  private constructor(
    readonly source: BlockSource,
    private readonly options: FatOpenOptions,
  ) {}

  static async open(source: BlockSource, options: FatOpenOptions = {}): Promise<FatFilesystem> {
    const fs = new FatFilesystem(source, options);
    fs.state = await fs.load();
    return fs;
  }

  private async load(): Promise<State> {
    const retryable = this.options.live ?? false;
    const limits: FatLimits = { ...DEFAULT_LIMITS, ...this.options.limits };
    const boot = await readBootSector(this.source, { retryable, useBackup: this.options.useBackupBootSector });
    const vol = new FatVolume(this.source, boot, retryable, limits);
    const fat = new FatTable(vol);
    const chains = new BoundedLru<number, ClusterChain>(limits.chainCacheRuns, (c) => Math.max(1, c.runCount));
    const partial = { vol, fat, chains } as State;
    // The mount reads the root directory (its size and link count); so do we, and fail where it fails.
    const root = await this.readRoot(partial);
    const directories = new BoundedLru<number, Directory>(limits.directoryCacheBytes, (d) => Math.max(DIR_ENTRY_SIZE, d.size));
    return { ...partial, root, directories, loading: new Map(), freeClusters: undefined };
  }

  async refresh(): Promise<void> {
    this.state = await this.load();
  }

  /** The boot sector as read (BPB fields, kernel geometry, FSInfo free count, warnings). */
  get bootSector(): BootSector {
    return this.state.vol.boot;
  }

  get volume(): FatVolume {
    return this.state.vol;
  }

  /** FAT12, FAT16 or FAT32, as fsck.fat and blkid's VERSION call it. */
  get fatType(): 'FAT12' | 'FAT16' | 'FAT32' {
    return `FAT${this.state.vol.geometry.fatBits}`;
  }

  /** The label of the root directory's label entry (blkid's LABEL). */
  get rootLabel(): string | undefined {
    const raw = this.state.root.parsed.label;
    return raw ? labelText(raw) : undefined;
  }

  /** The label in the boot sector (blkid's LABEL_FATBOOT); undefined for "NO NAME". */
  get bootLabel(): string | undefined {
    const raw = this.state.vol.boot.bpb.BS_VolLab;
    return raw.toString('latin1') === NO_NAME ? undefined : labelText(raw);
  }

  /** The root directory's label, else the boot sector's (as dosfstools' fatlabel shows it). Code page 437, trailing spaces removed. */
  get label(): string | undefined {
    return this.rootLabel ?? this.bootLabel;
  }

  /** The volume serial as "XXXX-XXXX" (blkid's UUID). */
  get uuid(): string | undefined {
    return formatSerial(this.state.vol.boot.bpb.BS_VolID);
  }

  get warnings(): readonly string[] {
    return this.state.vol.boot.warnings;
  }

  async statfs(): Promise<StatFs> {
    const state = this.state;
    if (!state.freeClusters) {
      const p = state.fat.countFree();
      state.freeClusters = p;
      p.catch(() => {
        if (state.freeClusters === p) state.freeClusters = undefined;
      });
    }
    return computeStatfs(state.vol.geometry, await state.freeClusters);
  }

  async getattr(ino: number): Promise<FileStat> {
    const state = this.state;
    if (ino === ROOT_INO) return rootStat(state.root.size, state.root.parsed.subdirs, state.vol.clusterSize);
    const inode = await this.entryInode(ino);
    return this.statOf(state, inode);
  }

  private async statOf(state: State, inode: EntryInode): Promise<FileStat> {
    const { vol } = state;
    const e = inode.entry;
    if (inode.deleted) return statOfEntry(inode.ino, e, isDirectory(e) ? 0 : e.fileSize, 0, vol.clusterSize);
    if (!isDirectory(e)) return statOfEntry(inode.ino, e, e.fileSize, 1, vol.clusterSize);
    const dir = await this.directoryOf(state, inode);
    return statOfEntry(inode.ino, e, dir.size, dir.parsed.subdirs, vol.clusterSize);
  }

  async readdir(ino: number): Promise<DirEntry[]> {
    const dir = await this.directory(ino);
    return dir.parsed.entries.map((e) => ({
      name: e.name,
      rawName: Buffer.from(e.name, 'utf8'),
      ino: inoOfPosition(dir.positionOf(e.offset)),
      type: e.attr & ATTR.DIRECTORY ? 'directory' : 'file',
    }));
  }

  /**
   * The kernel's vfat lookup (fat_search_long): trailing dots of the name are
   * ignored, each entry's 8.3 name and then its long name are compared
   * ignoring the case of ASCII letters only (a Debian kernel's iocharset
   * "ascii", with utf8), and the first entry that matches wins.
   */
  async lookup(dirIno: number, name: string): Promise<number | undefined> {
    const dir = await this.directory(dirIno);
    if (name === '.') return dirIno;
    if (name === '..') return dirIno === ROOT_INO ? ROOT_INO : undefined;
    const wanted = foldAscii(name.replace(/\.+$/, ''));
    if (!wanted) return undefined;
    for (const e of dir.parsed.entries) {
      if (!e.shortName) continue;
      if (foldAscii(e.shortName) === wanted || (e.longName !== undefined && foldAscii(e.longName) === wanted)) return inoOfPosition(dir.positionOf(e.offset));
    }
    return undefined;
  }

  async read(ino: number, offset: number, length: number): Promise<Buffer> {
    const state = this.state;
    const { vol } = state;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new FatError('EINVAL', vol.image, `read of inode ${ino}: invalid offset ${offset} or length ${length}`);
    }
    if (ino === ROOT_INO) throw new FatError('EISDIR', vol.image, `inode ${ino} is the root directory, not a file`);
    const inode = await this.liveInode(ino);
    const e = inode.entry;
    if (isDirectory(e)) throw new FatError('EISDIR', vol.image, `inode ${ino} is a directory, not a file`);
    if (offset >= e.fileSize || length === 0) return Buffer.alloc(0);
    const n = Math.min(length, e.fileSize - offset);
    if (n > vol.limits.maxReadBytes) {
      throw new FatError('EFBIG', vol.image, `read of ${n} bytes from inode ${ino} is over the ${vol.limits.maxReadBytes}-byte limit of one read; read it in pieces`);
    }
    // A file without a first cluster reads as zeros, as the kernel maps nothing for it.
    if (e.start === 0) return Buffer.alloc(n);
    const runs = await this.fileRuns(state, inode, offset, n);
    return readRuns(vol.source, runs, vol.clusterSize, offset, n, vol.dataOffset - 2 * vol.clusterSize);
  }

  async readlink(ino: number): Promise<string> {
    const st = await this.getattr(ino);
    throw new FatError('EINVAL', this.state.vol.image, `inode ${ino} is a ${st.type}, not a symbolic link (FAT has none)`);
  }

  /** The cluster chain as extents, clipped to [offset, offset + length) and to the file's size; a file without clusters is one hole. */
  async extents(ino: number, offset = 0, length?: number): Promise<FileExtent[]> {
    const state = this.state;
    const { vol } = state;
    if (ino === ROOT_INO) throw new FatError('EISDIR', vol.image, `inode ${ino} is the root directory, not a file`);
    const inode = await this.liveInode(ino);
    const e = inode.entry;
    if (isDirectory(e)) throw new FatError('EISDIR', vol.image, `inode ${ino} is a directory, not a file`);
    const from = Math.max(0, offset);
    const to = Math.min(e.fileSize, length === undefined ? e.fileSize : offset + length);
    if (to <= from) return [];
    if (e.start === 0) return [{ offset: from, length: to - from, kind: 'hole' }];
    const runs = await this.fileRuns(state, inode, from, to - from);
    const cs = vol.clusterSize;
    const out: FileExtent[] = [];
    for (const r of runs) {
      const s = Math.max(from, r.lblk * cs);
      const end = Math.min(to, (r.lblk + r.length) * cs);
      if (end > s) out.push({ offset: s, length: end - s, kind: 'data', physical: vol.clusterOffset(r.pblk!) + (s - r.lblk * cs) });
    }
    return out;
  }

  /**
   * Every entry of the tree in inode (position) order, the root first; with
   * `deleted`, the deleted entries of every directory reached too (their
   * first character is lost; their directories are not descended into).
   * A directory reached twice (a cross-linked or looping tree) is listed but
   * not descended into again.
   */
  async *inodes(options: InodeEnumerationOptions = {}): AsyncIterable<InodeEntry> {
    const state = this.state;
    const { vol } = state;
    const out: InodeEntry[] = [{ ino: ROOT_INO, deleted: false, stat: await this.getattr(ROOT_INO) }];
    const seenStarts = new Set<number>([vol.geometry.rootCluster]);
    const pending: number[] = [ROOT_INO];
    while (pending.length) {
      const dirIno = pending.pop()!;
      const dir = await this.directory(dirIno);
      for (const e of dir.parsed.entries) {
        const ino = inoOfPosition(dir.positionOf(e.offset));
        const inode: EntryInode = { ino, position: positionOfIno(ino), entry: parseShortEntry(e.raw, vol.geometry.fatBits === 32), deleted: false };
        out.push({ ino, deleted: false, stat: await this.statOf(state, inode) });
        if (isDirectory(inode.entry) && !seenStarts.has(inode.entry.start)) {
          seenStarts.add(inode.entry.start);
          pending.push(ino);
        }
        if (out.length > vol.limits.maxInodes) throw new FatError('EFBIG', vol.image, `more than ${vol.limits.maxInodes} entries in the filesystem, over guestlens's limit for one enumeration of its inodes (timeline, inode scans)`);
      }
      if (options.deleted) {
        for (const d of dir.parsed.deleted) {
          const ino = inoOfPosition(dir.positionOf(d.offset));
          const entry = parseShortEntry(d.raw, vol.geometry.fatBits === 32);
          out.push({ ino, deleted: true, stat: await this.statOf(state, { ino, position: positionOfIno(ino), entry, deleted: true }) });
        }
      }
    }
    out.sort((a, b) => a.ino - b.ino);
    yield* out;
  }

  /** The deleted entries of one directory, with what is left of their names. */
  async deletedEntries(dirIno: number): Promise<FatDeletedDirEntry[]> {
    const state = this.state;
    const dir = await this.directory(dirIno);
    const out: FatDeletedDirEntry[] = [];
    for (const d of dir.parsed.deleted) {
      const ino = inoOfPosition(dir.positionOf(d.offset));
      const entry = parseShortEntry(d.raw, state.vol.geometry.fatBits === 32);
      out.push({ name: d.name, ino, stat: await this.statOf(state, { ino, position: positionOfIno(ino), entry, deleted: true }) });
    }
    return out;
  }

  // ---- inodes and directories ----------------------------------------------

  /** The directory entry an inode number names (deleted ones included). */
  private async entryInode(ino: number): Promise<EntryInode> {
    const { vol } = this.state;
    const g = vol.geometry;
    const position = positionOfIno(ino);
    const rootStart = g.dirStart * g.sectorSize;
    const dataEnd = vol.dataOffset + g.totalClusters * vol.clusterSize;
    const inRoot = g.dirEntries > 0 && position >= rootStart && position < rootStart + g.dirEntries * DIR_ENTRY_SIZE;
    if (!Number.isSafeInteger(ino) || ino <= ROOT_INO || (!inRoot && (position < vol.dataOffset || position >= dataEnd))) {
      throw new FatError('ENOENT', vol.image, `inode ${ino} is not the position of a directory entry of this filesystem`);
    }
    const sector = Math.floor(position / g.sectorSize);
    const within = position - sector * g.sectorSize;
    const raw = (await vol.sector(sector, `directory entry of inode ${ino}`)).subarray(within, within + DIR_ENTRY_SIZE);
    const attr = raw[11];
    if (raw[0] === 0 || attr === ATTR.LONG_NAME || attr & ATTR.VOLUME_ID) {
      throw new FatError('ENOENT', vol.image, `inode ${ino}: no file or directory at byte ${position}`);
    }
    return { ino, position, entry: parseShortEntry(Buffer.from(raw), g.fatBits === 32), deleted: raw[0] === DELETED_FLAG };
  }

  private async liveInode(ino: number): Promise<EntryInode> {
    const inode = await this.entryInode(ino);
    if (inode.deleted) throw new FatError('ENOENT', this.state.vol.image, `inode ${ino} is a deleted directory entry; its clusters are free and may hold other data`);
    return inode;
  }

  /** The directory `ino` names (the root, or a live directory entry). */
  private async directory(ino: number): Promise<Directory> {
    const state = this.state;
    if (ino === ROOT_INO) return state.root;
    const inode = await this.liveInode(ino);
    if (!isDirectory(inode.entry)) throw new FatError('ENOTDIR', state.vol.image, `inode ${ino} is a file, not a directory`);
    return this.directoryOf(state, inode);
  }

  private directoryOf(state: State, inode: EntryInode): Promise<Directory> {
    const hit = state.directories.get(inode.ino);
    if (hit) return Promise.resolve(hit);
    let p = state.loading.get(inode.ino);
    if (!p) {
      const loading = this.readSubdirectory(state, inode)
        .then((d) => {
          state.directories.set(inode.ino, d);
          return d;
        })
        .finally(() => state.loading.delete(inode.ino));
      state.loading.set(inode.ino, loading);
      p = loading;
    }
    return p;
  }

  private async readSubdirectory(state: State, inode: EntryInode): Promise<Directory> {
    const { vol } = state;
    const e = inode.entry;
    const owner = `directory entry at byte ${inode.position}`;
    if (e.start === 0 || e.start === vol.geometry.rootCluster) {
      throw vol.corrupt(owner, inode.position, `the directory starts at cluster ${e.start}, which cannot hold a subdirectory (the kernel reports "corrupted directory (invalid i_start)")`);
    }
    const dir = await this.readChainDirectory(state, inode.ino, e.start, owner, false);
    if (dir.parsed.subdirs < 2) {
      throw vol.corrupt(owner, inode.position, `the directory lacks its "." and ".." entries (the kernel reports "corrupted directory (invalid entries)")`);
    }
    return dir;
  }

  private async readRoot(state: State): Promise<Directory> {
    const { vol } = state;
    const g = vol.geometry;
    if (g.fatBits !== 32) {
      const start = g.dirStart * g.sectorSize;
      const size = g.dirEntries * DIR_ENTRY_SIZE;
      const data = size ? await vol.bytes(start, size, 'root directory') : Buffer.alloc(0);
      return { parsed: parseDirectory(data, true), size, positionOf: (o) => start + o };
    }
    // FAT32 with no root cluster: the kernel mounts it with an empty root.
    if (g.rootCluster === 0) return { parsed: parseDirectory(Buffer.alloc(0), true), size: 0, positionOf: (o) => o };
    return this.readChainDirectory(state, ROOT_INO, g.rootCluster, 'root directory', true);
  }

  private async readChainDirectory(state: State, key: number, start: number, owner: string, isRoot: boolean): Promise<Directory> {
    const { vol } = state;
    const chain = this.chainFor(state, key, start, owner);
    const clusters = await chain.length();
    state.chains.set(key, chain);
    const size = clusters * vol.clusterSize;
    if (size > vol.limits.maxDirectoryBytes) {
      throw new FatError('EFBIG', vol.image, `the ${owner} is ${size} bytes long (${clusters} clusters), over guestlens's limit of ${vol.limits.maxDirectoryBytes} bytes for one directory`);
    }
    const data = Buffer.alloc(size);
    for (const r of chain.runs(0, clusters)) {
      const bytes = await vol.bytes(vol.clusterOffset(r.pcn), r.len * vol.clusterSize, `clusters ${r.pcn}..${r.pcn + r.len - 1} of the ${owner}`);
      bytes.copy(data, r.lcn * vol.clusterSize);
    }
    const cs = vol.clusterSize;
    return { parsed: parseDirectory(data, isRoot), size, positionOf: (o) => vol.clusterOffset(chain.clusterAt(Math.floor(o / cs))) + (o % cs) };
  }

  private chainFor(state: State, key: number, start: number, owner: string): ClusterChain {
    let chain = state.chains.get(key);
    if (!chain || chain.start !== start) {
      chain = new ClusterChain(state.vol, state.fat, start, owner);
      state.chains.set(key, chain);
    }
    return chain;
  }

  /** Runs covering bytes [offset, offset + n) of a file, checked against its size and the device. */
  private async fileRuns(state: State, inode: EntryInode, offset: number, n: number): Promise<BlockRun[]> {
    const { vol } = state;
    const cs = vol.clusterSize;
    const owner = `directory entry at byte ${inode.position}`;
    const chain = this.chainFor(state, inode.ino, inode.entry.start, owner);
    const first = Math.floor(offset / cs);
    const end = Math.ceil((offset + n) / cs);
    const mapped = await chain.extend(end);
    state.chains.set(inode.ino, chain);
    if (mapped < end) {
      throw vol.corrupt(`cluster chain of the ${owner}`, undefined, `it ends after ${mapped} clusters, but the file's size of ${inode.entry.fileSize} bytes needs ${Math.ceil(inode.entry.fileSize / cs)} (the kernel reports "request beyond EOF")`);
    }
    const runs: BlockRun[] = [];
    for (const r of chain.runs(first, end - first)) {
      const at = vol.clusterOffset(r.pcn);
      if (at + r.len * cs > vol.source.size) {
        throw vol.corrupt(`clusters ${r.pcn}..${r.pcn + r.len - 1} of the ${owner}`, at, `they lie beyond the end of the device (${vol.source.size} bytes)`);
      }
      runs.push({ lblk: r.lcn, length: r.len, pblk: r.pcn });
    }
    return runs;
  }
}

/** A label field: up to a NUL, trailing spaces removed, code page 437. */
function labelText(raw: Buffer): string | undefined {
  const bytes = Buffer.from(raw);
  if (bytes[0] === 0x05) bytes[0] = DELETED_FLAG;
  const nul = bytes.indexOf(0);
  const text = cp437String(nul < 0 ? bytes : bytes.subarray(0, nul)).replace(/ +$/, '');
  return text || undefined;
}

function foldAscii(s: string): string {
  return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}
