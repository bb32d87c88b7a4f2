/**
 * The NTFS driver behind the Filesystem interface, showing what ntfs-3g's
 * read-only mount with default options shows (the view libguestfs gives):
 * inode numbers are MFT record numbers, owners are the mounting user (uid
 * and gid 0, or the `uid`/`gid` options, as ntfs-3g without a user mapping),
 * permissions 0777, times from $STANDARD_INFORMATION, sizes and st_blocks as
 * ntfs-3g computes them, reparse points and Interix files typed as ntfs-3g
 * types them, and named streams as "user.NAME" extended attributes (its
 * default streams_interface=xattr).
 *
 * Opening reads the boot sector, $MFT, $UpCase and $Volume, and checks what
 * Windows left unfinished (dirty flag, hibernation, $LogFile). refresh()
 * throws all of it away and opens again.
 */
import { BoundedLru, type BlockSource } from '@guestlens/block';
import type { DirEntry, FileExtent, FileStat, FileType, Filesystem, InodeEntry, InodeEnumerationOptions, StatFs } from '../filesystem.ts';
import { isCompressed, isEncrypted } from './attribute.ts';
import { countZeroBits } from './bitmap.ts';
import { readBootSector } from './bootSector.ts';
import { sameUtf16, utf16Of } from './collate.ts';
import { findEntry, indexEntries, listed, type DirectoryEntry } from './directory.ts';
import { NtfsError, NtfsUnsupportedError } from './errors.ts';
import { parseFileName, type FileName } from './fileName.ts';
import { HIBERFILE_HEADER_SIZE, HIBERFILE_NAME, hibernationState, type HibernationState } from './hibernation.ts';
import { assembleInode, attributeOf, attributesOf, type NtfsAttribute, type NtfsInode } from './inode.ts';
import { interixByContent, interixBySize, interixNeedsContent, type InterixType } from './interix.ts';
import {
  ATTR_TYPE,
  FILE_ATTR,
  FILE_BITMAP,
  FILE_LOGFILE,
  FILE_MFT,
  FILE_ROOT,
  FILE_SECURE,
  FILE_UPCASE,
  FILE_VOLUME,
  I30,
  REPARSE_TAG,
} from './layout.ts';
import { logFileState, type LogFileState } from './logFile.ts';
import { Mft } from './mft.ts';
import { describeMountState, type NtfsMountState } from './mountState.ts';
import { UNSUPPORTED_TARGET_LENGTH, linkTarget, parseReparsePoint, reparseKind, unsupportedTarget, validReparseData, type ReparsePoint, type ReparseResolver } from './reparse.ts';
import { parseStandardInformation, type StandardInformation } from './standardInformation.ts';
import { computeStatfs } from './statfs.ts';
import { readStream, readWholeStream } from './streamData.ts';
import { Upcase } from './upcase.ts';
import { IndexTree } from './indexTree.ts';
import { NTFS3G_DEFAULT_DESCRIPTOR, SDS_HEADER_SIZE, parseSecurityDescriptor, parseUserMapping, type Ownership, type SecurityDescriptor, type UserMapping } from './security.ts';
import { parseVolumeInformation, type VolumeInformation } from './volumeInformation.ts';
import { DEFAULT_LIMITS, NtfsVolume, type NtfsLimits } from './volume.ts';

export interface NtfsOpenOptions {
  /** The image may be written while we read (a running guest): damage is reported as retryable. */
  live?: boolean;
  limits?: Partial<NtfsLimits>;
  /** Owner shown for every file (ntfs-3g: the mounting user, or its uid= option). Default 0. */
  uid?: number;
  /** Group shown for every file (ntfs-3g's gid= option). Default 0. */
  gid?: number;
  /** Look names up ignoring case, as Windows does (ntfs-3g is exact unless told otherwise). Default false. */
  ignoreCase?: boolean;
}

/** Everything about one inode the getattr rules need. */
interface InodeView {
  inode: NtfsInode;
  si: StandardInformation;
  /** The unnamed $DATA, if any. */
  data: NtfsAttribute | undefined;
}

interface TypeDecision {
  type: FileType;
  /** Permission bits (before the symlink rule). */
  perms: number;
  size: number;
  blocks: number;
  /** ntfs-3g's "nodata" path: a SYSTEM file without unnamed data gets no owner and no permissions. */
  noOwner?: boolean;
  rdev?: { major: number; minor: number };
  /** The symlink target, when computing the type needed it. */
  target?: string;
  reparse?: ReparsePoint;
}

interface State {
  vol: NtfsVolume;
  volumeInfo: VolumeInformation;
  mount: NtfsMountState;
  inodes: BoundedLru<number, Promise<NtfsInode>>;
  inodeWeights: Map<number, number>;
  dirs: BoundedLru<number, DirEntry[]>;
  types: BoundedLru<number, Promise<TypeDecision>>;
  userMapping?: Promise<UserMapping | undefined>;
}

const S_IFMT: Record<FileType, number> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  chardev: 0o020000,
  blockdev: 0o060000,
  fifo: 0o010000,
  socket: 0o140000,
  unknown: 0,
};

export class NtfsFilesystem implements Filesystem {
  readonly type = 'ntfs';
  readonly rootIno = FILE_ROOT;
  private state!: State;

  private constructor(
    readonly source: BlockSource,
    private readonly options: NtfsOpenOptions,
  ) {}

  static async open(source: BlockSource, options: NtfsOpenOptions = {}): Promise<NtfsFilesystem> {
    const fs = new NtfsFilesystem(source, options);
    fs.state = await fs.load();
    return fs;
  }

  get label(): string | undefined {
    return this.state.volumeInfo.label || undefined;
  }
  get uuid(): string | undefined {
    return this.state.vol.boot.uuid;
  }
  /** Damage tolerated, then what Windows left unfinished. */
  get warnings(): readonly string[] {
    return [...this.state.vol.warnings, ...this.state.mount.inexactReasons];
  }
  get volume(): NtfsVolume {
    return this.state.vol;
  }
  get volumeInformation(): VolumeInformation {
    return this.state.volumeInfo;
  }
  get mountState(): NtfsMountState {
    return this.state.mount;
  }

  private async load(): Promise<State> {
    const retryable = this.options.live ?? false;
    const limits: NtfsLimits = { ...DEFAULT_LIMITS, ...this.options.limits };
    const { boot, primaryProblem } = await readBootSector(this.source, retryable);
    const vol = new NtfsVolume(this.source, boot, retryable, limits);
    if (primaryProblem) vol.warn(`the boot sector is unusable (${primaryProblem}); its backup at byte ${boot.offset} was used`);
    vol.mft = await Mft.open(vol);
    // An inode weighs one plus its runs, known once it is assembled (a fragmented file can have thousands).
    const inodeWeights = new Map<number, number>();
    const state: State = {
      vol,
      volumeInfo: undefined as unknown as VolumeInformation,
      mount: undefined as unknown as NtfsMountState,
      inodes: new BoundedLru(limits.inodeCacheWeight, (_p, k) => inodeWeights.get(k) ?? 1),
      inodeWeights,
      dirs: new BoundedLru(limits.directoryCacheEntries, (d) => d.length + 1),
      types: new BoundedLru(4096),
    };
    this.state = state;

    const upcaseData = attributeOf(await this.inode(FILE_UPCASE), ATTR_TYPE.DATA);
    if (!upcaseData) throw vol.corrupt('$UpCase (MFT record 10)', undefined, 'it has no $DATA');
    const upcase = Upcase.parse(await readWholeStream(vol, upcaseData, '$UpCase', 131072));
    if (typeof upcase === 'string') throw vol.corrupt('$UpCase (MFT record 10)', undefined, upcase);
    vol.upcase = upcase;

    const volumeIno = await this.inode(FILE_VOLUME);
    const info = attributeOf(volumeIno, ATTR_TYPE.VOLUME_INFORMATION);
    if (!info) throw vol.corrupt('$Volume (MFT record 3)', undefined, 'it has no $VOLUME_INFORMATION');
    const volumeInfo = parseVolumeInformation(attributeOf(volumeIno, ATTR_TYPE.VOLUME_NAME)?.value, info.value!);
    if (typeof volumeInfo === 'string') throw vol.corrupt('$Volume (MFT record 3)', undefined, volumeInfo);
    state.volumeInfo = volumeInfo;

    const root = await this.inode(FILE_ROOT);
    if (!root.record.isDirectory) throw vol.corrupt('root directory (MFT record 5)', undefined, 'it is not a directory');
    const [hib, hibProblem] = await this.hibernation(root);
    state.mount = describeMountState(volumeInfo.dirty, hib, await this.logFile(), hibProblem);
    return state;
  }

  private async hibernation(root: NtfsInode): Promise<[HibernationState | 'unreadable', string?]> {
    try {
      const e = await findEntry(this.state.vol, root, utf16Of(HIBERFILE_NAME), false);
      if (!e) return ['none'];
      const data = attributeOf(await this.inode(e.ino), ATTR_TYPE.DATA);
      if (!data) return ['short'];
      return [hibernationState(await readStream(this.state.vol, data, 0, HIBERFILE_HEADER_SIZE, HIBERFILE_NAME))];
    } catch (err) {
      if (err instanceof NtfsError) return ['unreadable', err.detail];
      throw err;
    }
  }

  private async logFile(): Promise<LogFileState> {
    try {
      const data = attributeOf(await this.inode(FILE_LOGFILE), ATTR_TYPE.DATA);
      if (!data) return { state: 'unreadable', reason: '$LogFile has no $DATA' };
      return await logFileState((o, l) => readStream(this.state.vol, data, o, l, '$LogFile'), data.dataSize);
    } catch (err) {
      if (err instanceof NtfsError) return { state: 'unreadable', reason: err.detail };
      throw err;
    }
  }

  async refresh(): Promise<void> {
    this.state = await this.load();
  }

  // ---- inodes -------------------------------------------------------------------

  /** The file in MFT record `n` (a base record in use), its attributes assembled. */
  inode(n: number): Promise<NtfsInode> {
    const { vol, inodes, inodeWeights } = this.state;
    if (!Number.isSafeInteger(n) || n < 0 || n >= vol.mft.recordCount) return Promise.reject(vol.error('ENOENT', `no inode ${n}: $MFT has ${vol.mft.recordCount} records`));
    const hit = inodes.get(n);
    if (hit) return hit;
    const p = (async () => {
      const rec = await vol.mft.record(n);
      if (!rec.inUse) throw vol.error('ENOENT', `inode ${n} is not in use`);
      if (rec.baseRecord !== 0) throw vol.error('ENOENT', `MFT record ${n} is an extension of record ${rec.baseRecord}, not a file`);
      return assembleInode(vol, rec);
    })();
    inodeWeights.delete(n);
    inodes.set(n, p);
    p.then(
      (inode) => {
        inodeWeights.set(n, 1 + inode.attributes.reduce((w, a) => w + (a.runs?.length ?? 0), 0));
        if (inodes.peek(n) === p) inodes.set(n, p);
      },
      () => inodes.delete(n, p),
    );
    return p;
  }

  private async view(n: number): Promise<InodeView> {
    const inode = await this.inode(n);
    const siAttr = attributeOf(inode, ATTR_TYPE.STANDARD_INFORMATION);
    if (!siAttr) throw this.state.vol.corrupt(`MFT record ${n}`, this.state.vol.mft.offsetOf(n), 'it has no $STANDARD_INFORMATION');
    const si = parseStandardInformation(siAttr.value!);
    if (typeof si === 'string') throw this.state.vol.corrupt(`MFT record ${n}`, this.state.vol.mft.offsetOf(n), si);
    return { inode, si, data: attributeOf(inode, ATTR_TYPE.DATA) };
  }

  /** The $FILE_NAME attributes of an inode (every name in every namespace, with their own times). */
  async fileNames(n: number): Promise<FileName[]> {
    const inode = await this.inode(n);
    return attributesOf(inode, ATTR_TYPE.FILE_NAME).map((a) => {
      const fn = parseFileName(a.value!);
      if (typeof fn === 'string') throw this.state.vol.corrupt(`$FILE_NAME of MFT record ${n}`, undefined, fn);
      return fn;
    });
  }

  /** The inode's $STANDARD_INFORMATION (times, DOS attributes, security id). */
  async standardInformation(n: number): Promise<StandardInformation> {
    return (await this.view(n)).si;
  }

  /** The reparse point of an inode, if it has one. */
  async reparsePoint(n: number): Promise<ReparsePoint | undefined> {
    const inode = await this.inode(n);
    const a = attributeOf(inode, ATTR_TYPE.REPARSE_POINT);
    if (!a) return undefined;
    return parseReparsePoint(await readWholeStream(this.state.vol, a, `$REPARSE_POINT of MFT record ${n}`, 16 * 1024 + 24));
  }

  // ---- getattr ------------------------------------------------------------------

  private decide(n: number): Promise<TypeDecision> {
    const { types } = this.state;
    const hit = types.get(n);
    if (hit) return hit;
    const p = this.computeType(n);
    types.set(n, p);
    p.catch(() => types.delete(n, p));
    return p;
  }

  /** ntfs-3g's ntfs_fuse_getattr, type/size/blocks part. */
  private async computeType(n: number): Promise<TypeDecision> {
    const v = await this.view(n);
    const { inode, si, data } = v;
    const dataAllocated = data ? allocatedForBlocks(data) : 0;
    if (si.fileAttributes & FILE_ATTR.REPARSE_POINT) return this.reparseType(v, dataAllocated);
    if (inode.record.isDirectory) {
      const sized = data ?? attributeOf(inode, ATTR_TYPE.INDEX_ALLOCATION, I30);
      return { type: 'directory', perms: 0o777, size: sized?.dataSize ?? 0, blocks: Math.floor((sized ? (data ? dataAllocated : sized.allocatedSize) : 0) / 512) };
    }
    const base: TypeDecision = { type: 'file', perms: 0o777, size: data?.dataSize ?? 0, blocks: Math.ceil(dataAllocated / 512) };
    if (!(si.fileAttributes & FILE_ATTR.SYSTEM)) return base;
    if (!data) return { ...base, perms: 0, noOwner: true };
    let intx: InterixType | undefined = interixBySize(data.dataSize, (si.fileAttributes & FILE_ATTR.HIDDEN) !== 0);
    if (interixNeedsContent(data.dataSize)) {
      const content = interixByContent(await readStream(this.state.vol, data, 0, data.dataSize, `data of MFT record ${n}`));
      if (!content) throw this.state.vol.corrupt(`Interix symlink MFT record ${n}`, undefined, 'its target is not valid UTF-16');
      if (content.type !== 'file') intx = content;
    }
    if (!intx || intx.type === 'file') return base;
    if (intx.type === 'symlink') return { ...base, type: 'symlink', size: Buffer.byteLength(intx.target, 'utf8'), target: intx.target };
    if (intx.type === 'blockdev' || intx.type === 'chardev') return { ...base, type: intx.type, rdev: { major: Number(intx.major), minor: Number(intx.minor) } };
    return { ...base, type: intx.type };
  }

  private async reparseType(v: InodeView, dataAllocated: number): Promise<TypeDecision> {
    const { inode, si } = v;
    const n = inode.number;
    const blocks = Math.ceil(dataAllocated / 512);
    const rp = await this.reparsePoint(n);
    const bad: TypeDecision = { type: 'symlink', perms: 0o777, size: UNSUPPORTED_TARGET_LENGTH, blocks, ...(rp ? { reparse: rp } : {}) };
    if (!rp) return bad;
    const kind = reparseKind(rp.tag);
    const valid = validReparseData(rp, inode.record.isDirectory, si.fileAttributes);
    if (kind === 'link') {
      const target = valid ? await linkTarget(this.resolver(), n, rp, inode.record.isDirectory) : undefined;
      if (target === undefined) return bad;
      return { ...bad, size: Buffer.byteLength(target, 'utf8'), target };
    }
    if (kind === 'wsl-special') {
      if (!valid) return { ...bad, blocks: 0 };
      const t = (rp.tag & 0xffff0fff) >>> 0;
      const type: FileType = t === REPARSE_TAG.AF_UNIX ? 'socket' : t === REPARSE_TAG.LX_FIFO ? 'fifo' : t === REPARSE_TAG.LX_CHR ? 'chardev' : 'blockdev';
      return { type, perms: 0, size: 0, blocks: 0, reparse: rp, ...(type === 'chardev' || type === 'blockdev' ? { rdev: { major: 0, minor: 0 } } : {}) };
    }
    return bad;
  }

  async getattr(ino: number): Promise<FileStat> {
    const v = await this.view(ino);
    const d = await this.decide(ino);
    const { si, inode } = v;
    let mode = S_IFMT[d.type] | d.perms;
    if (d.type === 'symlink') mode |= 0o777;
    const owned = !d.noOwner;
    const stat: FileStat = {
      ino,
      type: d.type,
      mode,
      nlink: d.type === 'directory' ? 1 : inode.record.linkCount,
      uid: owned ? (this.options.uid ?? 0) : 0,
      gid: owned ? (this.options.gid ?? 0) : 0,
      size: d.size,
      blocks: d.blocks,
      atime: si.lastAccessTime,
      mtime: si.lastDataChangeTime,
      ctime: si.lastMftChangeTime,
      crtime: si.creationTime,
    };
    if (d.rdev) stat.rdev = d.rdev;
    return stat;
  }

  // ---- directories ----------------------------------------------------------------

  private async directoryInode(ino: number): Promise<NtfsInode> {
    const d = await this.decide(ino);
    if (d.type !== 'directory') throw this.state.vol.error('ENOTDIR', `inode ${ino} is a ${d.type === 'symlink' ? 'symbolic link' : d.type}, not a directory`);
    return this.inode(ino);
  }

  async readdir(ino: number): Promise<DirEntry[]> {
    const { dirs, vol } = this.state;
    const hit = dirs.get(ino);
    // Callers own what they get: a copy of the cached listing.
    if (hit) return [...hit];
    const dir = await this.directoryInode(ino);
    const out: DirEntry[] = [];
    for await (const e of indexEntries(vol, dir)) {
      if (!listed(e)) continue;
      out.push({ name: e.fileName.name, rawName: e.fileName.nameRaw, ino: e.ino, type: entryType(e) });
    }
    dirs.set(ino, out);
    return [...out];
  }

  async lookup(dirIno: number, name: string): Promise<number | undefined> {
    return this.lookupName(dirIno, name, this.options.ignoreCase ?? false);
  }

  /** `lookup` ignoring case, as Windows (and `C:\...` paths) resolve names: the first name equal once upper-cased. */
  async lookupIgnoringCase(dirIno: number, name: string): Promise<number | undefined> {
    return this.lookupName(dirIno, name, true);
  }

  private async lookupName(dirIno: number, name: string, ignoreCase: boolean): Promise<number | undefined> {
    const dir = await this.directoryInode(dirIno);
    if (name === '.') return dirIno;
    if (name === '..') return dirIno === FILE_ROOT ? FILE_ROOT : (await this.fileNames(dirIno))[0]?.parentRecord;
    if (name.length === 0 || name.length > 255) return undefined;
    const e = await findEntry(this.state.vol, dir, utf16Of(name), ignoreCase);
    if (!e) return undefined;
    await this.checkSequence(dirIno, e);
    return e.ino;
  }

  /** ntfs-3g refuses (EIO) an entry whose sequence number is not the record's: the index is stale or damaged. */
  private async checkSequence(dirIno: number, e: DirectoryEntry): Promise<void> {
    const { vol } = this.state;
    if (e.ino >= vol.mft.recordCount) throw vol.corrupt(`directory ${dirIno}`, undefined, `entry "${e.fileName.name}" refers to MFT record ${e.ino}, beyond the ${vol.mft.recordCount} records of $MFT`);
    const rec = await vol.mft.record(e.ino);
    if (e.sequence !== 0 && rec.sequenceNumber !== e.sequence) {
      throw vol.corrupt(`directory ${dirIno}`, undefined, `entry "${e.fileName.name}" refers to MFT record ${e.ino} with sequence ${e.sequence}, but the record has sequence ${rec.sequenceNumber}`);
    }
  }

  // ---- file contents ----------------------------------------------------------------

  async read(ino: number, offset: number, length: number): Promise<Buffer> {
    const { vol } = this.state;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) throw vol.error('EINVAL', `read of inode ${ino}: invalid offset ${offset} or length ${length}`);
    const d = await this.decide(ino);
    if (d.type === 'directory') throw vol.error('EISDIR', `inode ${ino} is a directory, not a file`);
    if (d.type !== 'file') throw vol.error('EINVAL', `inode ${ino} is a ${d.type === 'symlink' ? 'symbolic link' : d.type}, not a regular file`);
    const { data } = await this.view(ino);
    if (!data || offset >= data.dataSize || length === 0) return Buffer.alloc(0);
    const n = Math.min(length, data.dataSize - offset);
    if (n > vol.limits.maxReadBytes) throw vol.error('EFBIG', `read of ${n} bytes from inode ${ino} is over the ${vol.limits.maxReadBytes}-byte limit of one read; read it in pieces`);
    return readStream(vol, data, offset, n, `data of inode ${ino}`);
  }

  async readlink(ino: number): Promise<string> {
    const d = await this.decide(ino);
    if (d.type !== 'symlink') throw this.state.vol.error('EINVAL', `inode ${ino} is a ${d.type}, not a symbolic link`);
    if (d.target !== undefined) return d.target;
    return unsupportedTarget(d.reparse?.tag ?? 0);
  }

  // ---- extended attributes: named streams ---------------------------------------------

  /** "user.NAME" for every named $DATA stream (ntfs-3g's streams_interface=xattr), none for links and special files. */
  async listxattr(ino: number): Promise<string[]> {
    const d = await this.decide(ino);
    if (d.type !== 'file' && d.type !== 'directory') return [];
    const inode = await this.inode(ino);
    return attributesOf(inode, ATTR_TYPE.DATA)
      .filter((a) => a.name !== '' && !(Buffer.byteLength(a.name) > 9 && a.name.startsWith('ntfs-3g.')))
      .map((a) => `user.${a.name}`);
  }

  async getxattr(ino: number, name: string): Promise<Buffer> {
    const { vol } = this.state;
    const d = await this.decide(ino);
    const stream = name.startsWith('user.') ? name.slice(5) : undefined;
    if (stream && (d.type === 'file' || d.type === 'directory')) {
      const a = attributeOf(await this.inode(ino), ATTR_TYPE.DATA, stream);
      if (a) {
        if (a.dataSize > vol.limits.maxReadBytes) throw vol.error('EFBIG', `stream "${stream}" of inode ${ino} is ${a.dataSize} bytes, over the ${vol.limits.maxReadBytes}-byte limit of one read`);
        return readStream(vol, a, 0, a.dataSize, `stream "${stream}" of inode ${ino}`);
      }
    }
    if (name.startsWith('system.ntfs_')) {
      const v = await this.systemXattr(ino, name);
      if (v) return v;
    }
    throw vol.error('ENODATA', `inode ${ino} has no extended attribute ${JSON.stringify(name)}`);
  }

  /** The named streams of an inode with their sizes (alternate data streams). */
  async streams(ino: number): Promise<{ name: string; size: number }[]> {
    const inode = await this.inode(ino);
    return attributesOf(inode, ATTR_TYPE.DATA)
      .filter((a) => a.name !== '')
      .map((a) => ({ name: a.name, size: a.dataSize }));
  }

  // ---- extents and enumeration -------------------------------------------------------

  async extents(ino: number, offset = 0, length?: number): Promise<FileExtent[]> {
    const { vol } = this.state;
    const d = await this.decide(ino);
    if (d.type !== 'file') throw vol.error(d.type === 'directory' ? 'EISDIR' : 'EINVAL', `inode ${ino} is a ${d.type}, not a regular file`);
    const { data } = await this.view(ino);
    if (!data) return [];
    return streamExtents(vol, data, offset, length ?? Math.max(0, data.dataSize - offset));
  }

  async *inodes(options: InodeEnumerationOptions = {}): AsyncIterable<InodeEntry> {
    const { vol } = this.state;
    for (let n = 0; n < vol.mft.recordCount; n++) {
      let rec;
      try {
        rec = await vol.mft.record(n);
      } catch (err) {
        // A torn or damaged record that is not in use is as good as absent; one in use is damage to report.
        if (err instanceof NtfsError && options.deleted) continue;
        throw err;
      }
      if (rec.baseRecord !== 0) continue;
      if (rec.inUse) {
        yield { ino: n, deleted: false, stat: await this.getattr(n) };
      } else if (options.deleted) {
        const stat = await this.deletedStat(n);
        if (stat) yield { ino: n, deleted: true, stat };
      }
    }
  }

  /** What a record no longer in use still says of its file (no extension records: they may be reused). */
  private async deletedStat(n: number): Promise<FileStat | undefined> {
    const { vol } = this.state;
    const rec = await vol.mft.record(n);
    const siAttr = rec.attributes.find((a) => a.type === ATTR_TYPE.STANDARD_INFORMATION && !a.nonResident);
    if (!siAttr) return undefined;
    const si = parseStandardInformation(siAttr.value!);
    if (typeof si === 'string') return undefined;
    const data = rec.attributes.find((a) => a.type === ATTR_TYPE.DATA && a.name === '' && a.lowestVcn === 0);
    const type: FileType = rec.isDirectory ? 'directory' : 'file';
    return {
      ino: n,
      type,
      mode: S_IFMT[type] | 0o777,
      nlink: 0,
      uid: this.options.uid ?? 0,
      gid: this.options.gid ?? 0,
      size: data?.dataSize ?? 0,
      blocks: data ? Math.ceil((data.nonResident && (isCompressed(data) || data.flags & 0x8000) ? (data.compressedSize ?? data.allocatedSize) : data.allocatedSize) / 512) : 0,
      atime: si.lastAccessTime,
      mtime: si.lastDataChangeTime,
      ctime: si.lastMftChangeTime,
      crtime: si.creationTime,
      dtime: si.lastMftChangeTime,
    };
  }

  // ---- security ---------------------------------------------------------------------

  /**
   * The file's security descriptor, from $Secure by its security id (NTFS
   * 3.x) or from its own $SECURITY_DESCRIPTOR attribute, as ntfs-3g chooses;
   * without either, the default descriptor ntfs-3g shows (marked synthesized).
   */
  async securityDescriptor(ino: number): Promise<SecurityDescriptor> {
    const { vol } = this.state;
    const { inode, si } = await this.view(ino);
    let raw: Buffer | undefined;
    if (si.v3 && si.securityId !== 0) raw = await this.secureDescriptor(si.securityId);
    else {
      const a = attributeOf(inode, ATTR_TYPE.SECURITY_DESCRIPTOR);
      if (a) raw = await readWholeStream(vol, a, `$SECURITY_DESCRIPTOR of MFT record ${ino}`, 65536);
    }
    if (!raw) return { ...(parseSecurityDescriptor(NTFS3G_DEFAULT_DESCRIPTOR) as SecurityDescriptor), synthesized: true };
    const sd = parseSecurityDescriptor(raw);
    if (typeof sd === 'string') throw vol.corrupt(`security descriptor of MFT record ${ino}`, undefined, sd);
    return sd;
  }

  /** The descriptor security id `id` names in $Secure ($SII, then $SDS); undefined when $Secure has no such id. */
  private async secureDescriptor(id: number): Promise<Buffer | undefined> {
    const { vol } = this.state;
    const secure = await this.inode(FILE_SECURE);
    const sii = IndexTree.open(vol, secure, '$SII', 'view');
    const sds = attributeOf(secure, ATTR_TYPE.DATA, '$SDS');
    if (!sii || !sds) return undefined;
    const e = await sii.find((key) => (key.length < 4 ? -1 : Math.sign(id - key.readUInt32LE(0))));
    if (!e) return undefined;
    if (e.data.length < SDS_HEADER_SIZE) throw vol.corrupt('$Secure:$SII', undefined, `entry for security id ${id} has ${e.data.length} bytes of data`);
    const offset = Number(e.data.readBigUInt64LE(8));
    const length = e.data.readUInt32LE(16);
    if (length < SDS_HEADER_SIZE || length > 65536 + SDS_HEADER_SIZE || !Number.isSafeInteger(offset) || offset + length > sds.dataSize) {
      throw vol.corrupt('$Secure:$SII', undefined, `entry for security id ${id} points at ${length} bytes at ${offset} of $SDS (${sds.dataSize} bytes)`);
    }
    return readStream(vol, sds, offset + SDS_HEADER_SIZE, length - SDS_HEADER_SIZE, `$Secure:$SDS entry ${id}`);
  }

  /** The owner and group SIDs of a file, with the Linux ids the volume's ntfs-3g user mapping gives them (none: unmapped). */
  async ownership(ino: number): Promise<Ownership> {
    const sd = await this.securityDescriptor(ino);
    const mapping = await this.userMapping();
    const out: Ownership = { owner: sd.owner.text, group: sd.group.text };
    const uid = mapping?.users.get(sd.owner.text);
    const gid = mapping?.groups.get(sd.group.text);
    if (uid !== undefined) out.uid = uid;
    if (gid !== undefined) out.gid = gid;
    return out;
  }

  /** .NTFS-3G/UserMapping, when the volume has one. */
  private userMapping(): Promise<UserMapping | undefined> {
    const state = this.state;
    state.userMapping ??= (async () => {
      const dir = await this.lookupName(FILE_ROOT, '.NTFS-3G', false);
      if (dir === undefined || (await this.decide(dir)).type !== 'directory') return undefined;
      const file = await this.lookupName(dir, 'UserMapping', false);
      if (file === undefined || (await this.decide(file)).type !== 'file') return undefined;
      return parseUserMapping((await this.read(file, 0, 1024 * 1024)).toString('utf8'));
    })();
    return state.userMapping;
  }

  /** ntfs-3g's system.ntfs_* attributes that describe a file rather than a path. */
  private async systemXattr(ino: number, name: string): Promise<Buffer | undefined> {
    switch (name) {
      case 'system.ntfs_acl':
        return (await this.securityDescriptor(ino)).raw;
      case 'system.ntfs_attrib':
      case 'system.ntfs_attrib_be': {
        const { inode, si } = await this.view(ino);
        let attrib = si.fileAttributes;
        attrib = inode.record.isDirectory ? attrib | FILE_ATTR.DIRECTORY : attrib & ~FILE_ATTR.DIRECTORY;
        if (!attrib) attrib = FILE_ATTR.NORMAL;
        const b = Buffer.alloc(4);
        if (name === 'system.ntfs_attrib') b.writeUInt32LE(attrib >>> 0);
        else b.writeUInt32BE(attrib >>> 0);
        return b;
      }
      case 'system.ntfs_reparse_data':
        return (await this.reparsePoint(ino))?.raw;
      case 'system.ntfs_times': {
        const siAttr = attributeOf(await this.inode(ino), ATTR_TYPE.STANDARD_INFORMATION)!;
        const v = siAttr.value!;
        // Creation, data change, access, MFT change: ntfs-3g's order, not the attribute's.
        return Buffer.concat([v.subarray(0, 8), v.subarray(8, 16), v.subarray(24, 32), v.subarray(16, 24)]);
      }
      default:
        return undefined;
    }
  }

  // ---- statfs -----------------------------------------------------------------------

  async statfs(): Promise<StatFs> {
    const { vol, mount } = this.state;
    const bitmap = attributeOf(await this.inode(FILE_BITMAP), ATTR_TYPE.DATA);
    if (!bitmap) throw vol.corrupt('$Bitmap (MFT record 6)', undefined, 'it has no $DATA');
    const mftBitmap = attributeOf(await this.inode(FILE_MFT), ATTR_TYPE.BITMAP);
    if (!mftBitmap) throw vol.corrupt('$MFT (MFT record 0)', undefined, 'it has no $BITMAP');
    // Bitmaps hold one bit per cluster or record, rounded to 8 bytes; a much larger size is damage (and would be a long count of zeros).
    const clusterBitmapBytes = Math.ceil(vol.boot.nrClusters / 64) * 8;
    if (bitmap.dataSize > clusterBitmapBytes + vol.clusterSize) throw vol.corrupt('$Bitmap (MFT record 6)', undefined, `${bitmap.dataSize} bytes, more than the ${clusterBitmapBytes} the volume's ${vol.boot.nrClusters} clusters need`);
    const recordBitmapBytes = Math.ceil(vol.mft.recordCount / 64) * 8;
    if (mftBitmap.dataSize > recordBitmapBytes + vol.clusterSize) throw vol.corrupt("$MFT's $BITMAP", undefined, `${mftBitmap.dataSize} bytes, more than the ${recordBitmapBytes} its ${vol.mft.recordCount} records need`);
    const freeClusters = await countZeroBits((o, l) => readStream(vol, bitmap, o, l, '$Bitmap'), bitmap.dataSize);
    const mftFree = await countZeroBits((o, l) => readStream(vol, mftBitmap, o, l, "$MFT's $BITMAP"), mftBitmap.dataSize);
    return computeStatfs(
      {
        clusterSize: vol.clusterSize,
        clusterBits: vol.boot.clusterBits,
        mftRecordBits: vol.boot.mftRecordBits,
        nrClusters: vol.boot.nrClusters,
        freeClusters,
        mftBitmapAllocated: mftBitmap.allocatedSize,
        mftBitmapDataSize: mftBitmap.dataSize,
        mftBitmapZeroBits: mftFree,
      },
      mount.inexactReasons,
    );
  }

  // ---- what the link translation needs --------------------------------------------------

  private resolver(): ReparseResolver {
    return {
      fixName: async (dir, name) => {
        let dirInode: NtfsInode;
        try {
          dirInode = await this.inode(dir);
        } catch (err) {
          if (err instanceof NtfsError && err.code === 'ENOENT') return undefined;
          throw err;
        }
        if (!attributeOf(dirInode, ATTR_TYPE.INDEX_ROOT, I30)) return undefined;
        const e = await findEntry(this.state.vol, dirInode, name, true);
        if (!e) return undefined;
        const stored = new Uint16Array(e.fileName.nameRaw.length / 2);
        for (let i = 0; i < stored.length; i++) stored[i] = e.fileName.nameRaw.readUInt16LE(i * 2);
        // Equal ignoring case means equal length; anything else would not be the name sought.
        return stored.length === name.length || sameUtf16(stored, name) ? { ino: e.ino, name: stored } : undefined;
      },
      describe: async (ino) => {
        try {
          const v = await this.view(ino);
          const parent = ino === FILE_ROOT ? undefined : (await this.fileNames(ino))[0]?.parentRecord;
          return { isDirectory: v.inode.record.isDirectory, isReparse: (v.si.fileAttributes & FILE_ATTR.REPARSE_POINT) !== 0, parent };
        } catch (err) {
          if (err instanceof NtfsError && err.code === 'ENOENT') return undefined;
          throw err;
        }
      },
      driveLetterDefined: async (letter) => {
        try {
          const mapping = await this.lookupName(FILE_ROOT, '.NTFS-3G', false);
          if (mapping === undefined) return false;
          const d = await this.decide(mapping);
          if (d.type !== 'directory') return false;
          return (await this.lookupName(mapping, `${letter.toUpperCase()}:`, false)) !== undefined;
        } catch (err) {
          if (err instanceof NtfsError) return undefined;
          throw err;
        }
      },
    };
  }
}

/** The type readdir reports without reading the inode (ntfs-3g reads reparse and system entries: so do callers, by stat). */
function entryType(e: DirectoryEntry): FileType {
  const a = e.fileName.fileAttributes;
  if (a & (FILE_ATTR.REPARSE_POINT | FILE_ATTR.SYSTEM)) return 'unknown';
  return a & FILE_ATTR.I30_INDEX_PRESENT ? 'directory' : 'file';
}

/** ntfs-3g's ni->allocated_size: compressed size for compressed or sparse non-resident data, else allocated size. */
function allocatedForBlocks(a: NtfsAttribute): number {
  if (!a.nonResident) return a.allocatedSize;
  if (a.flags & (0x00ff | 0x8000)) return a.compressedSize ?? a.allocatedSize;
  return a.allocatedSize;
}

/** FIEMAP-like extents of a stream over [offset, offset + length). */
async function streamExtents(vol: NtfsVolume, a: NtfsAttribute, offset: number, length: number): Promise<FileExtent[]> {
  const end = Math.min(a.dataSize, offset + length);
  if (end <= offset) return [];
  if (!a.nonResident) return [{ offset, length: end - offset, kind: 'inline' }];
  if (isEncrypted(a)) throw new NtfsUnsupportedError(vol.image, 'EFS encryption', 'the extents of an encrypted file are not shown');
  const cs = vol.clusterSize;
  const out: FileExtent[] = [];
  const push = (e: FileExtent) => {
    const prev = out[out.length - 1];
    if (prev && prev.kind === e.kind && prev.offset + prev.length === e.offset && (e.physical === undefined || prev.physical! + prev.length === e.physical)) prev.length += e.length;
    else out.push(e);
  };
  const unitBytes = isCompressed(a) ? cs * 2 ** a.compressionUnit : 0;
  for (const r of a.runs!) {
    const rs = r.vcn * cs;
    const re = rs + r.length * cs;
    const from = Math.max(offset, rs);
    const to = Math.min(end, re);
    if (to <= from) continue;
    if (r.lcn === undefined) {
      push({ offset: from, length: to - from, kind: 'hole' });
      continue;
    }
    // A stored run inside a compressed unit that has holes holds compressed data.
    const compressedUnit = unitBytes > 0 && unitHasHole(a, Math.floor(r.vcn / 2 ** a.compressionUnit), 2 ** a.compressionUnit);
    const valid = a.initializedSize;
    if (from < valid) push({ offset: from, length: Math.min(to, valid) - from, kind: compressedUnit ? 'compressed' : 'data', physical: r.lcn * cs + (from - rs) });
    if (to > valid) push({ offset: Math.max(from, valid), length: to - Math.max(from, valid), kind: 'unwritten' });
  }
  return out;
}

function unitHasHole(a: NtfsAttribute, unit: number, clusters: number): boolean {
  const start = unit * clusters;
  return a.runs!.some((r) => r.lcn === undefined && r.vcn < start + clusters && r.vcn + r.length > start);
}
