/**
 * The ext2/3/4 driver behind the Filesystem interface. Opening reads the
 * superblock and group descriptors; when the superblock says the journal needs
 * recovery, everything (superblock included) is read through the replayed view
 * of the device, as the kernel sees it after mounting. refresh() throws all of
 * that away and opens again.
 */
import { BoundedLru, type BlockSource } from '@guestlens/block';
import { decodeName } from '../names.ts';
import { readRuns } from '../runs.ts';
import type { DirEntry, FileExtent, FileStat, Filesystem, InodeEntry, InodeEnumerationOptions, StatFs } from '../filesystem.ts';
import { aclToXattr } from './acl.ts';
import { scanInodes } from './inodeScan.ts';
import { xattrEntries } from './xattr.ts';
import { ExtError, ExtUnsupportedError } from './errors.ts';
import { readGroupDescriptors } from './groupDescriptor.ts';
import { INODE_FLAGS, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, deviceNumber, fileTypeOfMode, readInode, type Inode } from './inode.ts';
import { inlineContent } from './inlineData.ts';
import { readDirectoryEntries, type RawDirEntry } from './directory.ts';
import { mapBlocks } from './mapping.ts';
import { replayJournal, type ReplayOutcome } from './journal/index.ts';
import { extFlavour } from './fsType.ts';
import { htreeLookup, usesHtree } from './htree.ts';
import { computeStatfs } from './statfs.ts';
import { orphanCleanupEffect } from './orphans.ts';
import { mountRefusals } from './mountChecks.ts';
import {
  COMPAT,
  INCOMPAT,
  RO_COMPAT,
  SUPERBLOCK_OFFSET,
  SUPERBLOCK_SIZE,
  formatUuid,
  hasCompat,
  hasIncompat,
  hasRoCompat,
  parseSuperblock,
} from './superblock.ts';
import { DEFAULT_LIMITS, ExtVolume, type ExtLimits } from './volume.ts';

export interface ExtOpenOptions {
  /** The image may be written while we read (a running guest): checksum and consistency errors are marked retryable. */
  live?: boolean;
  limits?: Partial<ExtLimits>;
  /**
   * Replay the journal in memory when the superblock asks for recovery
   * (default true, as the kernel does at mount). False shows the device as it
   * is, and statfs says it is inexact.
   */
  replayJournal?: boolean;
}

/** What opening found out about mount-time work. */
export interface ExtMountState {
  /** RECOVER was set and the internal journal was replayed in memory. */
  replayed: boolean;
  transactions: number;
  replayedBlocks: number;
  revokeRecords: number;
  /** What orphan cleanup at mount frees (deleted-but-open files of a guest that did not unmount). */
  orphansFreedBlocks: number;
  orphansFreedInodes: number;
  /** Reasons statfs is not exact. */
  inexactReasons: string[];
}

const PATH_MAX = 4096;
const ROOT_INO = 2;

interface Directory {
  entries: RawDirEntry[];
  byName?: Map<string, number>;
}

interface State {
  vol: ExtVolume;
  mount: ExtMountState;
  /** Recently listed directories, bounded by their total entry count. */
  dirCache: BoundedLru<number, Directory>;
}

export class ExtFilesystem implements Filesystem {
  readonly rootIno = ROOT_INO;
  private state!: State;

  private constructor(
    readonly source: BlockSource,
    private readonly options: ExtOpenOptions,
  ) {}

  static async open(source: BlockSource, options: ExtOpenOptions = {}): Promise<ExtFilesystem> {
    const fs = new ExtFilesystem(source, options);
    fs.state = await fs.load();
    return fs;
  }

  get type(): string {
    return extFlavour(this.state.vol.sb);
  }
  get label(): string | undefined {
    return this.state.vol.sb.s_volume_name || undefined;
  }
  get uuid(): string | undefined {
    return formatUuid(this.state.vol.sb.s_uuid);
  }
  get warnings(): readonly string[] {
    return this.state.vol.tolerated;
  }
  /** Internals for diagnostics and tests: superblock, group descriptors, replay outcome. */
  get volume(): ExtVolume {
    return this.state.vol;
  }
  get mountState(): ExtMountState {
    return this.state.mount;
  }

  private async load(): Promise<State> {
    const retryable = this.options.live ?? false;
    const limits: ExtLimits = { ...DEFAULT_LIMITS, ...this.options.limits };
    let vol = await openVolume(this.source, retryable, limits);
    const mount: ExtMountState = { replayed: false, transactions: 0, replayedBlocks: 0, revokeRecords: 0, orphansFreedBlocks: 0, orphansFreedInodes: 0, inexactReasons: [] };
    const sb = vol.sb;
    if (hasIncompat(sb, INCOMPAT.RECOVER)) {
      if (!hasCompat(sb, COMPAT.HAS_JOURNAL)) {
        mount.inexactReasons.push('the superblock asks for journal recovery but has no journal');
      } else if (this.options.replayJournal === false) {
        mount.inexactReasons.push('the journal needs recovery and replay was turned off');
      } else if (sb.s_journal_inum === 0) {
        mount.inexactReasons.push('the journal needs recovery and is on an external device, which guestlens does not read');
      } else {
        const outcome: ReplayOutcome = await replayJournal(vol, this.source, sb.s_journal_inum);
        mount.replayed = true;
        mount.transactions = outcome.recovery.transactions;
        mount.replayedBlocks = outcome.recovery.blocks.size;
        mount.revokeRecords = outcome.recovery.revokeRecords;
        if (outcome.recovery.badDataBlocks) {
          mount.inexactReasons.push(`${outcome.recovery.badDataBlocks} journal block(s) failed their checksum and were not replayed`);
        }
        if (outcome.fastCommitPending) mount.inexactReasons.push('the journal holds fast commits, whose replay guestlens does not model');
        if (outcome.recovery.badDescriptor !== undefined) {
          mount.inexactReasons.push(`journal descriptor block ${outcome.recovery.badDescriptor} fails its checksum: replayed up to it, but the kernel refuses to mount this filesystem (error loading journal)`);
        }
        vol = await openVolume(outcome.source, retryable, limits);
      }
    }
    const after = vol.sb;
    mount.inexactReasons.push(...(await mountRefusals(vol)));
    const orphans = await orphanCleanupEffect(vol);
    mount.orphansFreedBlocks = orphans.freedBlocks;
    mount.orphansFreedInodes = orphans.freedInodes;
    if (orphans.inexact) mount.inexactReasons.push(orphans.inexact);
    if (hasRoCompat(after, RO_COMPAT.ORPHAN_PRESENT)) {
      mount.inexactReasons.push('the orphan file lists inodes that would be cleaned up at mount, which guestlens does not model');
    }
    return { vol, mount, dirCache: new BoundedLru<number, Directory>(DIR_CACHE_ENTRIES, (d) => d.entries.length) };
  }

  async refresh(): Promise<void> {
    this.state = await this.load();
  }

  async statfs(): Promise<StatFs> {
    const { vol, mount } = this.state;
    const sb = vol.sb;
    let journalBlocks = 0;
    if (hasCompat(sb, COMPAT.HAS_JOURNAL) && sb.s_journal_inum !== 0) {
      const j = await readInode(vol, sb.s_journal_inum, { special: true });
      journalBlocks = Math.floor(j.size / sb.blockSize);
    }
    return computeStatfs({ sb, groups: vol.groups, journalBlocks, inexactReasons: mount.inexactReasons, freedByMount: { blocks: mount.orphansFreedBlocks, inodes: mount.orphansFreedInodes } });
  }

  async getattr(ino: number): Promise<FileStat> {
    return statOf(await readInode(this.state.vol, ino));
  }

  // ---- optional capabilities -----------------------------------------------

  async listxattr(ino: number): Promise<string[]> {
    const { vol } = this.state;
    const entries = await xattrEntries(vol, await readInode(vol, ino));
    // system.data holds inline data: the kernel has no handler for it and never lists it.
    return entries.filter((e) => !(e.nameIndex === 7 && e.suffix.toString('latin1') === 'data')).map((e) => e.name);
  }

  async getxattr(ino: number, name: string): Promise<Buffer> {
    const { vol } = this.state;
    const entries = await xattrEntries(vol, await readInode(vol, ino));
    const e = entries.find((x) => x.name === name && !(x.nameIndex === 7 && x.suffix.toString('latin1') === 'data'));
    if (!e) throw new ExtError('ENODATA', vol.image, `inode ${ino} has no extended attribute ${JSON.stringify(name)}`);
    let value: Buffer;
    if (e.valueInum !== 0) {
      const ea = await readInode(vol, e.valueInum, { special: true });
      if (!(ea.i_flags & INODE_FLAGS.EA_INODE)) throw vol.corrupt(`extended attribute ${name} of inode ${ino}`, undefined, `its value inode ${e.valueInum} is not an EA inode`);
      if (ea.size < e.valueSize) throw vol.corrupt(`extended attribute ${name} of inode ${ino}`, undefined, `its value inode ${e.valueInum} holds ${ea.size} bytes, not ${e.valueSize}`);
      value = await readMapped(vol, ea, 0, e.valueSize);
    } else {
      value = Buffer.from(e.area.subarray(e.valueStart, e.valueStart + e.valueSize));
    }
    // POSIX ACLs are stored in ext4's short form; getxattr(2) returns the generic one.
    if (e.nameIndex === 2 || e.nameIndex === 3) return aclToXattr(value) ?? value;
    return value;
  }

  async extents(ino: number, offset = 0, length?: number): Promise<FileExtent[]> {
    const { vol } = this.state;
    const inode = await readInode(vol, ino);
    const wanted = Math.min(inode.size, length === undefined ? inode.size : offset + length);
    if (offset >= wanted) return [];
    if (inode.i_flags & INODE_FLAGS.INLINE_DATA) return [{ offset, length: wanted - offset, kind: 'inline' }];
    const bs = vol.blockSize;
    // Whole blocks, as FIEMAP reports them: the last extent runs to the end of its block.
    const end = Math.ceil(wanted / bs) * bs;
    const first = Math.floor(offset / bs);
    const runs = await mapBlocks(vol, inode, first, Math.ceil(end / bs) - first);
    const out: FileExtent[] = [];
    for (const run of runs) {
      const from = Math.max(offset, run.lblk * bs);
      const to = Math.min(end, (run.lblk + run.length) * bs);
      if (to <= from) continue;
      if (run.pblk !== undefined) out.push({ offset: from, length: to - from, kind: 'data', physical: run.pblk * bs + (from - run.lblk * bs) });
      else if (run.unwritten) out.push({ offset: from, length: to - from, kind: 'unwritten', ...(run.allocatedPblk === undefined ? {} : { physical: run.allocatedPblk * bs + (from - run.lblk * bs) }) });
      else out.push({ offset: from, length: to - from, kind: 'hole' });
    }
    return out;
  }

  async *inodes(options: InodeEnumerationOptions = {}): AsyncIterable<InodeEntry> {
    for await (const { inode, deleted } of scanInodes(this.state.vol, options.deleted ?? false)) {
      const stat = statOf(inode);
      if (deleted && inode.i_dtime) stat.dtime = { sec: inode.i_dtime, nsec: 0 };
      yield { ino: inode.ino, deleted, stat };
    }
  }

  async lookupRaw(dirIno: number, name: Buffer): Promise<number | undefined> {
    if (name.length === 1 && name[0] === 0x2e) return dirIno;
    const dir = await this.directory(dirIno);
    return dir.entries.find((e) => e.name.equals(name))?.ino;
  }


  async readdir(ino: number): Promise<DirEntry[]> {
    const entries = (await this.directory(ino)).entries;
    const out: DirEntry[] = [];
    for (const e of entries) {
      if (e.name.length <= 2 && (e.name.equals(DOT) || e.name.equals(DOTDOT))) continue;
      out.push({ name: decodeName(e.name), rawName: e.name, ino: e.ino, type: e.type });
    }
    return out;
  }

  async lookup(dirIno: number, name: string): Promise<number | undefined> {
    if (name === '.') {
      await this.directory(dirIno);
      return dirIno;
    }
    const nameBytes = Buffer.from(name, 'utf8');
    const state = this.state;
    if (!state.dirCache.has(dirIno) && name !== '..') {
      // A hashed directory answers one name from its index and a leaf or two, without being read whole.
      const inode = await readInode(state.vol, dirIno);
      if ((inode.i_mode & S_IFMT) !== S_IFDIR) throw new ExtError('ENOTDIR', state.vol.image, `inode ${dirIno} is a ${fileTypeOfMode(inode.i_mode)}, not a directory`);
      if (usesHtree(state.vol, inode)) {
        const r = await htreeLookup(state.vol, inode, nameBytes);
        if (r !== 'fallback') return r.found ? r.ino : this.lookupLatin1(dirIno, name, nameBytes);
      }
    }
    const dir = await this.directory(dirIno);
    if (!dir.byName) {
      dir.byName = new Map();
      for (const e of dir.entries) if (!dir.byName.has(e.name.toString('latin1'))) dir.byName.set(e.name.toString('latin1'), e.ino);
    }
    let ino = dir.byName.get(nameBytes.toString('latin1'));
    // readdir shows names that are not UTF-8 decoded as Latin-1; such a name looks up by those bytes.
    if (ino === undefined && /[^\x00-\x7f]/.test(name)) ino = dir.byName.get(name);
    if (ino === undefined && name === '..' && dirIno === ROOT_INO) return ROOT_INO;
    return ino;
  }

  /** After a miss by UTF-8 bytes in a hashed directory: a name readdir decoded as Latin-1 is looked up by those bytes. */
  private async lookupLatin1(dirIno: number, name: string, utf8: Buffer): Promise<number | undefined> {
    if (!/[\u0080-\u00ff]/.test(name) || /[^\x00-\xff]/.test(name)) return undefined;
    const latin1 = Buffer.from(name, 'latin1');
    if (latin1.equals(utf8)) return undefined;
    const inode = await readInode(this.state.vol, dirIno);
    const r = await htreeLookup(this.state.vol, inode, latin1);
    if (r === 'fallback') return (await this.directory(dirIno)).entries.find((e) => e.name.equals(latin1))?.ino;
    return r.found ? r.ino : undefined;
  }

  async read(ino: number, offset: number, length: number): Promise<Buffer> {
    const { vol } = this.state;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new ExtError('EINVAL', vol.image, `read of inode ${ino}: invalid offset ${offset} or length ${length}`);
    }
    const inode = await readInode(vol, ino);
    const fmt = inode.i_mode & S_IFMT;
    if (fmt === S_IFDIR) throw new ExtError('EISDIR', vol.image, `inode ${ino} is a directory, not a file`);
    if (fmt !== S_IFREG) throw new ExtError('EINVAL', vol.image, `inode ${ino} is a ${fileTypeOfMode(inode.i_mode)}, not a regular file`);
    if (inode.i_flags & INODE_FLAGS.ENCRYPT) throw new ExtUnsupportedError(vol.image, 'fscrypt encryption', `the contents of inode ${ino} are encrypted`);
    if (offset >= inode.size || length === 0) return Buffer.alloc(0);
    const n = Math.min(length, inode.size - offset);
    if (n > vol.limits.maxReadBytes) {
      throw new ExtError('EFBIG', vol.image, `read of ${n} bytes from inode ${ino} is over the ${vol.limits.maxReadBytes}-byte limit of one read; read it in pieces`);
    }
    if (inode.i_flags & INODE_FLAGS.INLINE_DATA) return Buffer.from(inlineContent(vol, inode).subarray(offset, offset + n));
    return readMapped(vol, inode, offset, n);
  }

  async readlink(ino: number): Promise<string> {
    const { vol } = this.state;
    const inode = await readInode(vol, ino);
    if ((inode.i_mode & S_IFMT) !== S_IFLNK) throw new ExtError('EINVAL', vol.image, `inode ${ino} is a ${fileTypeOfMode(inode.i_mode)}, not a symbolic link`);
    if (inode.i_flags & INODE_FLAGS.ENCRYPT) throw new ExtUnsupportedError(vol.image, 'fscrypt encryption', `the target of symlink inode ${ino} is encrypted`);
    const where = `symlink inode ${ino}`;
    if (inode.size === 0) throw vol.corrupt(where, undefined, 'empty symlink target');
    if (inode.size >= PATH_MAX || inode.size >= vol.blockSize) throw vol.corrupt(where, undefined, `target length ${inode.size} is over the limit`);
    let bytes: Buffer;
    if (inode.i_flags & INODE_FLAGS.INLINE_DATA) {
      bytes = inlineContent(vol, inode);
    } else if (isFastSymlink(vol, inode)) {
      if (inode.size >= inode.i_block.length) throw vol.corrupt(where, undefined, `fast symlink length ${inode.size} does not fit in i_block`);
      bytes = inode.i_block.subarray(0, inode.size);
    } else {
      bytes = await readMapped(vol, inode, 0, inode.size);
    }
    const nul = bytes.indexOf(0);
    return (nul < 0 ? bytes : bytes.subarray(0, nul)).toString('utf8');
  }

  private async directory(ino: number): Promise<Directory> {
    const state = this.state;
    const cached = state.dirCache.get(ino);
    if (cached) return cached;
    const inode = await readInode(state.vol, ino);
    if ((inode.i_mode & S_IFMT) !== S_IFDIR) throw new ExtError('ENOTDIR', state.vol.image, `inode ${ino} is a ${fileTypeOfMode(inode.i_mode)}, not a directory`);
    const entries = await readDirectoryEntries(state.vol, inode);
    const dir: Directory = { entries };
    state.dirCache.set(ino, dir);
    return dir;
  }
}

const DIR_CACHE_ENTRIES = 200_000;

/** stat(2) of an inode, as the kernel's ext4_getattr fills it. */
function statOf(inode: Inode): FileStat {
  const type = fileTypeOfMode(inode.i_mode);
  const stat: FileStat = {
    ino: inode.ino,
    type,
    mode: inode.i_mode,
    nlink: inode.i_links_count,
    uid: inode.uid,
    gid: inode.gid,
    size: inode.size,
    blocks: inode.blocks512,
    atime: inode.atime,
    mtime: inode.mtime,
    ctime: inode.ctime,
  };
  // ext4_file_getattr reports at least the inline bytes in st_blocks, so tools do not take the file for sparse.
  if (type === 'file' && inode.i_flags & INODE_FLAGS.INLINE_DATA) stat.blocks += Math.floor((inode.size + 511) / 512);
  if (inode.crtime) stat.crtime = inode.crtime;
  if (type === 'chardev' || type === 'blockdev') stat.rdev = deviceNumber(inode);
  return stat;
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/** ext4_inode_is_fast_symlink: no data blocks besides an xattr block means the target is in i_block. */
function isFastSymlink(vol: ExtVolume, inode: Inode): boolean {
  if (inode.i_flags & INODE_FLAGS.EA_INODE) return inode.size > 0 && inode.size < inode.i_block.length;
  const eaBlocks = inode.i_file_acl ? (vol.blockSize << vol.sb.clusterBits) >> 9 : 0;
  return inode.blocks512 - eaBlocks === 0;
}

/** Bytes [offset, offset + n) of a block-mapped inode; holes and unwritten extents read as zeros. */
async function readMapped(vol: ExtVolume, inode: Inode, offset: number, n: number): Promise<Buffer> {
  const bs = vol.blockSize;
  const firstBlock = Math.floor(offset / bs);
  const endBlock = Math.ceil((offset + n) / bs);
  return readRuns(vol.source, await mapBlocks(vol, inode, firstBlock, endBlock - firstBlock), bs, offset, n);
}

async function openVolume(source: BlockSource, retryable: boolean, limits: ExtLimits): Promise<ExtVolume> {
  if (source.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) {
    throw new ExtError('EINVAL', source.name, `too small (${source.size} bytes) to hold an ext superblock`);
  }
  const raw = await source.read(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE);
  const sb = parseSuperblock(raw, source.name, source.size, { retryable });
  const { groups, tolerated } = await readGroupDescriptors(sb, { readBlocks: (b, c) => source.read(b * sb.blockSize, c * sb.blockSize) }, source.name, { retryable });
  return new ExtVolume(source, sb, groups, retryable, limits, tolerated);
}
