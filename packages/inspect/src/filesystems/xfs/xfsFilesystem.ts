/**
 * The XFS driver (v4 and v5) behind the Filesystem interface. Opening reads
 * and checks the primary superblock and the root inode and finds out
 * whether the log needs recovery, as mount does. When it does, the log is
 * replayed in memory and everything, superblock included, is read through
 * the replayed view of the device, as the kernel sees it after mounting;
 * what mount would do beyond replay (finishing intents, freeing unlinked
 * inodes) makes statfs say it is not exact, and why. Everything else is
 * read on demand through the metadata cache. refresh() throws everything
 * away and opens again.
 */
import { BoundedLru, type BlockSource } from '@guestlens/block';
import { decodeName, nameCandidates } from '../names.ts';
import { readRuns } from '../runs.ts';
import type { DirEntry, FileExtent, FileStat, Filesystem, InodeEntry, InodeEnumerationOptions, StatFs } from '../filesystem.ts';
import { attributeValue, readAttributes } from './attr.ts';
import { mapFork, recordsToRuns } from './bmap.ts';
import { directoryForm, lookupHashed, lookupInEntries, readDirectory } from './directory.ts';
import { fileTypeOfFtype, type RawDirEntry } from './dirEntry.ts';
import { XfsError, XfsUnsupportedError } from './errors.ts';
import { DIFLAG, SB_PROBE_BYTES } from './layout.ts';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, deviceNumber, fileTypeOfMode, inodeNumber, readInode, type Inode } from './inode.ts';
import { inodeChunks } from './inodeBtree.ts';
import { inspectLog, type LogState } from './log.ts';
import { LogFormatError } from './logRecords.ts';
import { replayLog, type ReplayOutcome } from './logReplay.ts';
import { computeStatfs, mountCounters, type Counters } from './statfs.ts';
import { formatUuid, parseSuperblock } from './superblock.ts';
import { readSymlinkTarget } from './symlink.ts';
import { DEFAULT_LIMITS, XfsVolume, type XfsLimits } from './volume.ts';
import { storedName, visibleNames, xfsAclToPosixXattr } from './xattrNames.ts';

export interface XfsOpenOptions {
  /** The image may be written while we read (a running guest): checksum and consistency errors are marked retryable. */
  live?: boolean;
  limits?: Partial<XfsLimits>;
  /**
   * Replay the log in memory when it needs recovery (default true, as mount
   * does). False shows the device as it is, and statfs says it is inexact.
   */
  replayLog?: boolean;
}

/** What opening found out about mount-time work. */
export interface XfsMountState {
  /** The log state (undefined with an external log). */
  log?: LogState;
  /** The log needed recovery and was replayed in memory: what replay did. */
  replay?: Omit<ReplayOutcome, 'source' | 'inexact'>;
  /** Reasons statfs is not exact. */
  inexactReasons: string[];
}

interface Directory {
  entries: RawDirEntry[];
  parent?: bigint;
  byName?: Map<string, bigint>;
}

interface State {
  vol: XfsVolume;
  mount: XfsMountState;
  dirCache: BoundedLru<number, Directory>;
  counters?: Promise<Counters>;
}

const DIR_CACHE_ENTRIES = 200_000;
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

export class XfsFilesystem implements Filesystem {
  readonly type = 'xfs';
  private state!: State;

  private constructor(
    readonly source: BlockSource,
    private readonly options: XfsOpenOptions,
  ) {}

  static async open(source: BlockSource, options: XfsOpenOptions = {}): Promise<XfsFilesystem> {
    const fs = new XfsFilesystem(source, options);
    fs.state = await fs.load();
    return fs;
  }

  get rootIno(): number {
    return this.state.vol.sb.sb_rootino;
  }
  get label(): string | undefined {
    return this.state.vol.sb.sb_fname || undefined;
  }
  get uuid(): string | undefined {
    return formatUuid(this.state.vol.sb.sb_uuid);
  }
  get warnings(): readonly string[] {
    return this.state.vol.tolerated;
  }
  /** Internals for diagnostics and tests: superblock, limits, cache. */
  get volume(): XfsVolume {
    return this.state.vol;
  }
  get mountState(): XfsMountState {
    return this.state.mount;
  }

  private async load(): Promise<State> {
    const retryable = this.options.live ?? false;
    const limits: XfsLimits = { ...DEFAULT_LIMITS, ...this.options.limits };
    const source = this.source;
    if (source.size < SB_PROBE_BYTES) throw new XfsError('EINVAL', source.name, `too small (${source.size} bytes) to hold an XFS superblock`);
    let raw = await source.read(0, SB_PROBE_BYTES);
    const sectsize = raw.length >= 104 ? raw.readUInt16BE(102) : 512;
    if (sectsize > SB_PROBE_BYTES && sectsize <= 32768 && sectsize <= source.size) raw = await source.read(0, sectsize);
    const sb = parseSuperblock(raw, source.name, source.size, { retryable });
    let vol = new XfsVolume(source, sb, retryable, limits);
    const mount: XfsMountState = { inexactReasons: [] };

    if (sb.sb_logstart === 0) {
      mount.inexactReasons.push('the log is on an external device, which guestlens was not given: whether it needs recovery is unknown');
    } else {
      mount.log = await inspectLog(vol);
      if (mount.log.problem) mount.inexactReasons.push(`${mount.log.problem}; the kernel would refuse to mount it or replay it first`);
      else if (!mount.log.clean) {
        const notReplayed = 'the log needs recovery (the filesystem was not unmounted cleanly); the kernel replays it at mount, guestlens shows the blocks as they are on disk';
        if (this.options.replayLog === false) mount.inexactReasons.push(`${notReplayed} (replay was turned off)`);
        else {
          try {
            const { source: replayed, inexact, ...outcome } = await replayLog(vol, mount.log, { maxLogBytes: limits.maxReplayBytes });
            // Recovery may have rewritten the superblock too: everything is read again through the replayed view.
            const rawAfter = await replayed.read(0, Math.max(SB_PROBE_BYTES, sb.sb_sectsize));
            const sbAfter = parseSuperblock(rawAfter, source.name, source.size, { retryable, skipCrc: replayed.touched(0, sb.sb_sectsize) });
            vol = new XfsVolume(replayed, sbAfter, retryable, limits);
            mount.replay = outcome;
            mount.inexactReasons.push(...inexact);
          } catch (err) {
            // A log guestlens cannot replay (damaged, too big, written by a big-endian machine): the device as it is, said to be inexact.
            if (err instanceof LogFormatError) mount.inexactReasons.push(`${notReplayed}; its replay failed: ${err.message}`);
            else if (err instanceof XfsError && err.code === 'EOPNOTSUPP') mount.inexactReasons.push(`${notReplayed}; ${err.detail}`);
            else throw err;
          }
        }
      }
    }
    if (sb.sb_rblocks > 0) mount.inexactReasons.push('the filesystem has a realtime device, which guestlens does not read');

    const root = await readInode(vol, sb.sb_rootino).catch((err: unknown) => {
      if (err instanceof XfsError && err.code === 'ENOENT') throw vol.corrupt('root inode', undefined, `inode ${sb.sb_rootino} is not in use`);
      throw err;
    });
    if ((root.di_mode & S_IFMT) !== S_IFDIR) throw vol.corrupt(`root inode ${sb.sb_rootino}`, root.byteOffset, `it is a ${fileTypeOfMode(root.di_mode)}, not a directory`);
    // Mount finds the root inode's cluster through its AG's inode btree (xfs_imap_lookup), each
    // block through its verifier: an AGI or inode btree block it cannot use on that path fails the
    // mount ("Corrupt inobt pointer", "Metadata CRC error ... xfs_inobt_read_verify"), found by the
    // generated-damage corpus (test/support/damage/xfs.ts).
    const rootAg = Number(BigInt(sb.sb_rootino) >> BigInt(sb.aginoLog));
    const rootAgino = Number(BigInt(sb.sb_rootino) & ((1n << BigInt(sb.aginoLog)) - 1n));
    try {
      for await (const chunk of inodeChunks(vol, rootAg)) if (chunk.startino + 64 > rootAgino) break;
    } catch (err) {
      if (vol.retryable || !(err instanceof XfsError)) throw err;
      mount.inexactReasons.push(`the kernel refuses to mount it: the inode btree of AG ${rootAg}, through which it finds the root inode, is damaged (${err.message})`);
    }
    if (sb.sb_rblocks > 0 && root.di_flags & DIFLAG.RTINHERIT) mount.inexactReasons.push('the root directory stores files on the realtime device, whose space statfs would report');
    return { vol, mount, dirCache: new BoundedLru<number, Directory>(DIR_CACHE_ENTRIES, (d) => d.entries.length + 1) };
  }

  async refresh(): Promise<void> {
    this.state = await this.load();
  }

  async statfs(): Promise<StatFs> {
    const state = this.state;
    const clean = state.mount.log?.clean ?? true;
    state.counters ??= mountCounters(state.vol, clean);
    const counters = await state.counters.catch((err: unknown) => {
      state.counters = undefined;
      throw err;
    });
    return computeStatfs(state.vol, counters, state.mount.inexactReasons);
  }

  private inode(ino: number): Promise<Inode> {
    return readInode(this.state.vol, ino);
  }

  async getattr(ino: number): Promise<FileStat> {
    const inode = await this.inode(ino);
    const type = fileTypeOfMode(inode.di_mode);
    const special = type === 'chardev' || type === 'blockdev' || type === 'fifo' || type === 'socket';
    const stat: FileStat = {
      ino,
      type,
      mode: inode.di_mode,
      nlink: inode.nlink,
      uid: inode.di_uid,
      gid: inode.di_gid,
      // The kernel keeps no size for device, fifo and socket inodes.
      size: special ? 0 : inode.di_size,
      blocks: inode.di_nblocks * this.state.vol.bbPerBlock,
      atime: inode.atime,
      mtime: inode.mtime,
      ctime: inode.ctime,
    };
    if (inode.crtime) stat.crtime = inode.crtime;
    if (type === 'chardev' || type === 'blockdev') stat.rdev = deviceNumber(inode);
    return stat;
  }

  async readdir(ino: number): Promise<DirEntry[]> {
    const dir = await this.directory(ino);
    const vol = this.state.vol;
    const out: DirEntry[] = [];
    for (const e of dir.entries) {
      if (e.name.length <= 2 && (e.name.equals(DOT) || e.name.equals(DOTDOT))) continue;
      out.push({ name: decodeName(e.name), rawName: e.name, ino: inodeNumber(vol, e.ino, `inode number of "${decodeName(e.name)}" in directory ${ino}`), type: vol.sb.hasFtype ? fileTypeOfFtype(e.ftype) : 'unknown' });
    }
    return out;
  }

  async lookup(dirIno: number, name: string): Promise<number | undefined> {
    if (name === '.') {
      await this.directory(dirIno);
      return dirIno;
    }
    if (name === '..') return this.parentOf(dirIno);
    for (const candidate of nameCandidates(name)) {
      const ino = await this.lookupRaw(dirIno, candidate);
      if (ino !== undefined) return ino;
    }
    return undefined;
  }

  async lookupRaw(dirIno: number, name: Buffer): Promise<number | undefined> {
    const state = this.state;
    const vol = state.vol;
    const found = await this.lookupBytes(dirIno, name);
    return found === undefined ? undefined : inodeNumber(vol, found, `inode number of "${decodeName(name)}" in directory ${dirIno}`);
  }

  private async lookupBytes(dirIno: number, name: Buffer): Promise<bigint | undefined> {
    const state = this.state;
    const cached = state.dirCache.get(dirIno);
    if (cached) return this.lookupCached(cached, name);
    const inode = await this.inode(dirIno);
    if ((inode.di_mode & S_IFMT) !== S_IFDIR) throw new XfsError('ENOTDIR', state.vol.image, `inode ${dirIno} is a ${fileTypeOfMode(inode.di_mode)}, not a directory`);
    const form = await directoryForm(state.vol, inode);
    // A big directory answers one name from its hash index and a few blocks, without being read whole.
    if (form === 'leaf' || form === 'node') return lookupHashed(state.vol, inode, name);
    return this.lookupCached(await this.directory(dirIno), name);
  }

  private lookupCached(dir: Directory, name: Buffer): bigint | undefined {
    if (this.state.vol.sb.hasAsciiCi) return lookupInEntries(this.state.vol, dir.entries, name);
    if (!dir.byName) {
      dir.byName = new Map();
      for (const e of dir.entries) if (!dir.byName.has(e.name.toString('latin1'))) dir.byName.set(e.name.toString('latin1'), e.ino);
    }
    return dir.byName.get(name.toString('latin1'));
  }

  private async parentOf(dirIno: number): Promise<number | undefined> {
    const dir = await this.directory(dirIno);
    const parent = dir.parent ?? dir.entries.find((e) => e.name.equals(DOTDOT))?.ino;
    return parent === undefined ? undefined : inodeNumber(this.state.vol, parent, `parent of directory ${dirIno}`);
  }

  private async directory(ino: number): Promise<Directory> {
    const state = this.state;
    const cached = state.dirCache.get(ino);
    if (cached) return cached;
    const inode = await this.inode(ino);
    if ((inode.di_mode & S_IFMT) !== S_IFDIR) throw new XfsError('ENOTDIR', state.vol.image, `inode ${ino} is a ${fileTypeOfMode(inode.di_mode)}, not a directory`);
    const { entries, parent } = await readDirectory(state.vol, inode);
    const dir: Directory = { entries, parent };
    state.dirCache.set(ino, dir);
    return dir;
  }

  /** The regular-file inode `ino`, or the error read() and extents() give for anything else. */
  private async regularFile(ino: number, what: string): Promise<Inode> {
    const vol = this.state.vol;
    const inode = await this.inode(ino);
    const fmt = inode.di_mode & S_IFMT;
    if (fmt === S_IFDIR) throw new XfsError('EISDIR', vol.image, `inode ${ino} is a directory, not a file`);
    if (fmt !== S_IFREG) throw new XfsError('EINVAL', vol.image, `inode ${ino} is a ${fileTypeOfMode(inode.di_mode)}, not a regular file`);
    if (inode.di_flags & DIFLAG.REALTIME) throw new XfsUnsupportedError(vol.image, 'a realtime device', `the ${what} of inode ${ino} are on it`);
    return inode;
  }

  async read(ino: number, offset: number, length: number): Promise<Buffer> {
    const vol = this.state.vol;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new XfsError('EINVAL', vol.image, `read of inode ${ino}: invalid offset ${offset} or length ${length}`);
    }
    const inode = await this.regularFile(ino, 'contents');
    if (offset >= inode.di_size || length === 0) return Buffer.alloc(0);
    const n = Math.min(length, inode.di_size - offset);
    if (n > vol.limits.maxReadBytes) {
      throw new XfsError('EFBIG', vol.image, `read of ${n} bytes from inode ${ino} is over the ${vol.limits.maxReadBytes}-byte limit of one read; read it in pieces`);
    }
    const bs = vol.blockSize;
    const first = Math.floor(offset / bs);
    const end = Math.ceil((offset + n) / bs);
    const records = await mapFork({ vol, inode, fork: inode.data }, first, end - first);
    return readRuns(vol.source, recordsToRuns(vol, records), bs, offset, n);
  }

  async readlink(ino: number): Promise<string> {
    const vol = this.state.vol;
    const inode = await this.inode(ino);
    if ((inode.di_mode & S_IFMT) !== S_IFLNK) throw new XfsError('EINVAL', vol.image, `inode ${ino} is a ${fileTypeOfMode(inode.di_mode)}, not a symbolic link`);
    const bytes = await readSymlinkTarget(vol, inode);
    const nul = bytes.indexOf(0);
    return (nul < 0 ? bytes : bytes.subarray(0, nul)).toString('utf8');
  }

  async listxattr(ino: number): Promise<string[]> {
    const vol = this.state.vol;
    const inode = await this.inode(ino);
    return (await readAttributes(vol, inode)).flatMap(visibleNames);
  }

  async getxattr(ino: number, name: string): Promise<Buffer> {
    const vol = this.state.vol;
    const inode = await this.inode(ino);
    const wanted = storedName(name);
    if (wanted) {
      for (const attr of await readAttributes(vol, inode)) {
        if ((attr.flags & 0x0e) !== wanted.flags || !attr.name.equals(wanted.name)) continue;
        const value = await attributeValue(vol, inode, attr);
        if (!wanted.acl) return value;
        const converted = xfsAclToPosixXattr(value);
        if (!converted) throw vol.corrupt(`ACL of inode ${ino}`, inode.byteOffset, `its ${value.length} bytes are not an XFS ACL`);
        return converted;
      }
    }
    throw new XfsError('ENODATA', vol.image, `inode ${ino} has no extended attribute "${name}"`);
  }

  async extents(ino: number, offset = 0, length?: number): Promise<FileExtent[]> {
    const vol = this.state.vol;
    const inode = await this.regularFile(ino, 'extents');
    const end = length === undefined ? inode.di_size : Math.min(inode.di_size, offset + length);
    if (!Number.isSafeInteger(offset) || offset < 0 || end <= offset) return [];
    const bs = vol.blockSize;
    const first = Math.floor(offset / bs);
    const last = Math.ceil(end / bs);
    const records = await mapFork({ vol, inode, fork: inode.data }, first, last - first);
    if (records.length > vol.limits.maxExtentsPerCall) {
      throw new XfsError('EFBIG', vol.image, `inode ${ino} has more than ${vol.limits.maxExtentsPerCall} extents in the range asked; ask for a smaller range`);
    }
    const out: FileExtent[] = [];
    let pos = offset;
    for (const r of records) {
      const from = Math.max(pos, r.startoff * bs);
      const to = Math.min(end, (r.startoff + r.blockcount) * bs);
      if (to <= from) continue;
      if (from > pos) out.push({ offset: pos, length: from - pos, kind: 'hole' });
      const physical = vol.fsbToLinear(r.startblock)! * bs + (from - r.startoff * bs);
      out.push(r.unwritten ? { offset: from, length: to - from, kind: 'unwritten', physical } : { offset: from, length: to - from, kind: 'data', physical });
      pos = to;
    }
    if (pos < end) out.push({ offset: pos, length: end - pos, kind: 'hole' });
    return out;
  }

  async *inodes(options: InodeEnumerationOptions = {}): AsyncIterable<InodeEntry> {
    const vol = this.state.vol;
    for (let agno = 0; agno < vol.sb.sb_agcount; agno++) {
      for await (const chunk of inodeChunks(vol, agno)) {
        for (let i = 0; i < 64; i++) {
          if (chunk.holemask & (1 << (i >> 2))) continue;
          const free = ((chunk.free >> BigInt(i)) & 1n) === 1n;
          if (free && !options.deleted) continue;
          const ino = agno * 2 ** vol.sb.aginoLog + chunk.startino + i;
          const inode = await readInode(vol, ino, { allowFree: true });
          if (free) {
            if (inode.di_mode !== 0 || (inode.ctime.sec === 0 && inode.ctime.nsec === 0)) continue;
            yield { ino, deleted: true, stat: this.statOfFree(inode) };
            continue;
          }
          if (inode.di_mode === 0) throw vol.corrupt(`inode ${ino}`, inode.byteOffset, 'the inode btree says it is in use, but it has no mode');
          yield { ino, deleted: false, stat: await this.getattr(ino) };
        }
      }
    }
  }

  /** What a free (deleted) inode still tells: owner and times; the last change of a freed inode is its deletion. */
  private statOfFree(inode: Inode): FileStat {
    return {
      ino: inode.ino,
      type: 'unknown',
      mode: 0,
      nlink: 0,
      uid: inode.di_uid,
      gid: inode.di_gid,
      size: inode.di_size,
      blocks: inode.di_nblocks * this.state.vol.bbPerBlock,
      atime: inode.atime,
      mtime: inode.mtime,
      ctime: inode.ctime,
      ...(inode.crtime ? { crtime: inode.crtime } : {}),
      dtime: inode.ctime,
    };
  }
}
