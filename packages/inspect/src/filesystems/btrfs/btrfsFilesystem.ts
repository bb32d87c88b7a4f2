/**
 * The btrfs driver behind the Filesystem interface: one subvolume shown as
 * a tree (the default subvolume, or the one `subvolume` names, as mount's
 * subvol=/subvolid=), with the subvolumes nested in it reachable as the
 * kernel shows them, each with its own inode numbers (inodeNumbers.ts).
 * Opening reads the superblocks, the chunk tree and the root tree;
 * everything else is read when asked. refresh() opens again.
 */
import type { BlockSource } from '@guestlens/block';
import type { DirEntry, FileExtent, FileStat, FileType, Filesystem, FilesystemOpenOptions, InodeEntry, InodeEnumerationOptions, StatFs, Subvolume } from '../filesystem.ts';
import { FilesystemError } from '../errors.ts';
import { decodeName, nameCandidates } from '../names.ts';
import { bootstrap, type Bootstrapped } from './bootstrap.ts';
import { ExtentCache, fileExtentMap, readFileRange } from './fileData.ts';
import { InodeNumbers } from './inodeNumbers.ts';
import { parseDirItems, parseInodeItem, type DirItem, type InodeItem } from './items.ts';
import { MAX_U64 } from './key.ts';
import { EMPTY_SUBVOL_DIR_OBJECTID, FT, KEY, OBJECTID } from './layout.ts';
import { decodeItem, defaultSubvolume, findRoot, isLinkedAt, listSubvolumeRecords, listSubvolumes, nameHash, treeRootOf, type SubvolumeRecord } from './roots.ts';
import { computeSpace, computeStatfs, type BtrfsSpace } from './statfs.ts';
import { exactItem, itemsInRange, itemsOf, type TreeRoot } from './tree.ts';
import { DEFAULT_LIMITS, type BtrfsLimits, type BtrfsVolume } from './volume.ts';
import { directoryTooLarge } from '../directoryLimit.ts';

export interface BtrfsOpenOptions extends FilesystemOpenOptions {
  limits?: Partial<BtrfsLimits>;
  /**
   * Whose statfs to give: 'guest' (default), what the guest's own read-write
   * mount reports, as do df inside the guest and virt-df; or
   * 'read-only-mount', what this host kernel (6.18) reports for `mount -o ro`,
   * which leaves the free room inside data chunks out of f_bavail.
   */
  statfs?: 'guest' | 'read-only-mount';
}

import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, fileTypeOfMode } from '../posixMode.ts';
const PATH_MAX = 4096;

const FT_TYPES: Record<number, FileType> = {
  [FT.REG_FILE]: 'file',
  [FT.DIR]: 'directory',
  [FT.CHRDEV]: 'chardev',
  [FT.BLKDEV]: 'blockdev',
  [FT.FIFO]: 'fifo',
  [FT.SOCK]: 'socket',
  [FT.SYMLINK]: 'symlink',
};

interface State {
  boot: Bootstrapped;
  vol: BtrfsVolume;
  mounted: bigint;
  defaultId: bigint;
  records: SubvolumeRecord[];
  numbers: InodeNumbers;
  trees: Map<bigint, TreeRoot | undefined>;
  extents: ExtentCache;
  inexactReasons: string[];
  warnings: string[];
}

export class BtrfsFilesystem implements Filesystem {
  readonly type = 'btrfs';
  private state!: State;

  private constructor(
    private readonly sources: BlockSource[],
    private readonly options: BtrfsOpenOptions,
  ) {}

  static async open(sources: BlockSource[], options: BtrfsOpenOptions = {}): Promise<BtrfsFilesystem> {
    const fs = new BtrfsFilesystem(sources, options);
    fs.state = await fs.load();
    return fs;
  }

  /** The device given first (extents' physical offsets are on it). */
  get source(): BlockSource {
    return this.sources[0];
  }
  get label(): string | undefined {
    return this.state.vol.sb.label || undefined;
  }
  get uuid(): string | undefined {
    const h = this.state.vol.sb.fsid.toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  get rootIno(): number {
    return this.state.numbers.encode(this.state.mounted, OBJECTID.FIRST_FREE);
  }
  get warnings(): readonly string[] {
    return [...this.state.warnings, ...this.state.vol.tolerated];
  }
  /** The subvolume shown (5 is the top level). */
  get subvolumeId(): number {
    return Number(this.state.mounted);
  }
  /** Internals for diagnostics and tests. */
  get volume(): BtrfsVolume {
    return this.state.vol;
  }

  private get image(): string {
    return this.state.vol.image;
  }

  private async load(): Promise<State> {
    const limits = { ...DEFAULT_LIMITS, ...this.options.limits };
    const boot = await bootstrap(this.sources, limits, this.options.live ?? false);
    const vol = boot.vol;
    const warnings = [...boot.warnings];
    const inexactReasons: string[] = [...boot.refusals];
    if (vol.sb.logRoot !== 0n) {
      const why = `the log tree (at ${vol.sb.logRoot}) holds changes fsync'd after the last commit, which the kernel replays at mount and guestlens does not: files show the last committed state`;
      inexactReasons.push(why);
      warnings.push(why);
    }
    const defaultId = await defaultSubvolume(vol, boot.rootTree);
    const records = await listSubvolumeRecords(vol, boot.rootTree);
    const mounted = await this.chooseSubvolume(vol, boot.rootTree, records, defaultId);
    const numbers = new InodeNumbers(mounted, [OBJECTID.FS_TREE, ...records.map((r) => r.id)]);
    const state: State = { boot, vol, mounted, defaultId, records, numbers, trees: new Map(), extents: new ExtentCache(limits.extentCacheBytes), inexactReasons, warnings };
    const tree = await this.treeOf(state, mounted);
    if (!tree) throw new FilesystemError('ENOENT', vol.image, `subvolume ${mounted} has no root item in the root tree`);
    // Mount reads the mounted subvolume's tree down to its root directory's inode (btrfs_get_fs_root,
    // btrfs_iget of 256, each block through the tree checker): a tree it cannot read there fails the
    // mount, though statfs never looks at it (found by the generated-damage corpus, test/support/damage/btrfs.ts).
    try {
      const rootDir = await exactItem(vol, tree, { objectid: 256n, type: KEY.INODE_ITEM, offset: 0n });
      if (!rootDir) inexactReasons.push(`the kernel refuses to mount it: subvolume ${mounted} has no root directory inode (256)`);
    } catch (err) {
      if (vol.retryable || !(err instanceof FilesystemError)) throw err;
      inexactReasons.push(`the kernel refuses to mount it: the tree of subvolume ${mounted} cannot be read down to its root directory (${(err as Error).message})`);
    }
    return state;
  }

  /** subvolid= picks by id, subvol= by path from the top level; neither: the default subvolume. */
  private async chooseSubvolume(vol: BtrfsVolume, rootTree: TreeRoot, records: SubvolumeRecord[], defaultId: bigint): Promise<bigint> {
    const want = this.options.subvolume;
    if (want === undefined) return defaultId;
    if (typeof want === 'number') {
      if (want === 5 || records.some((r) => r.id === BigInt(want))) return BigInt(want);
      throw new FilesystemError('ENOENT', vol.image, `no subvolume with id ${want} (subvolid=)`);
    }
    const path = want.replace(/^\/+|\/+$/g, '').replace(/\/+/g, '/');
    if (path === '') return OBJECTID.FS_TREE;
    const list = await listSubvolumes(vol, rootTree, records, defaultId);
    const hit = list.find((s) => s.path === path);
    if (!hit) throw new FilesystemError('ENOENT', vol.image, `no subvolume at path "${path}" (subvol=); there are ${list.map((s) => `"${s.path}"`).join(', ') || 'none'}`);
    return BigInt(hit.id);
  }

  private async treeOf(state: State, id: bigint): Promise<TreeRoot | undefined> {
    if (!state.trees.has(id)) {
      const item = await findRoot(state.vol, state.boot.rootTree, id);
      state.trees.set(id, item ? treeRootOf(id, item) : undefined);
    }
    return state.trees.get(id);
  }

  async refresh(): Promise<void> {
    this.state = await this.load();
  }

  // ---- inodes ---------------------------------------------------------------

  private where(ino: number): { tree: bigint; objectid: bigint } {
    const w = this.state.numbers.decode(ino);
    if (!w) throw new FilesystemError('ENOENT', this.image, `no inode ${ino}`);
    return w;
  }

  private async tree(id: bigint): Promise<TreeRoot> {
    const t = await this.treeOf(this.state, id);
    if (!t) throw new FilesystemError('ENOENT', this.image, `subvolume ${id} has no root item`);
    return t;
  }

  private async inodeItem(ino: number): Promise<{ tree: bigint; objectid: bigint; root: TreeRoot; inode: InodeItem }> {
    const w = this.where(ino);
    const root = await this.tree(w.tree);
    if (w.objectid === BigInt(EMPTY_SUBVOL_DIR_OBJECTID)) return { ...w, root, inode: emptySubvolDir() };
    const found = await exactItem(this.state.vol, root, { objectid: w.objectid, type: KEY.INODE_ITEM, offset: 0n });
    if (!found) throw new FilesystemError('ENOENT', this.image, `no inode ${w.objectid} in ${root.name}`);
    return { ...w, root, inode: decodeItem(this.state.vol, found, `inode item ${w.objectid} of ${root.name}`, (d) => parseInodeItem(d)) };
  }

  async getattr(ino: number): Promise<FileStat> {
    const { inode } = await this.inodeItem(ino);
    const type = fileTypeOfMode(inode.mode);
    const sectorsize = BigInt(this.state.vol.sb.sectorsize);
    // btrfs_getattr: st_blocks is nbytes rounded up to the sector size, in 512-byte units.
    const blocks = ((inode.nbytes + sectorsize - 1n) / sectorsize) * sectorsize / 512n;
    const stat: FileStat = {
      ino,
      type,
      mode: inode.mode,
      nlink: inode.nlink,
      uid: inode.uid,
      gid: inode.gid,
      size: safe(inode.size, `size of inode ${ino}`, this.image),
      blocks: safe(blocks, `blocks of inode ${ino}`, this.image),
      atime: inode.atime,
      mtime: inode.mtime,
      ctime: inode.ctime,
      crtime: inode.otime,
    };
    if (type === 'chardev' || type === 'blockdev') stat.rdev = { major: Number(inode.rdev >> 20n) & 0xfff, minor: Number(inode.rdev & 0xfffffn) };
    return stat;
  }

  private async directory(ino: number): Promise<{ tree: bigint; objectid: bigint; root: TreeRoot }> {
    const d = await this.inodeItem(ino);
    if ((d.inode.mode & S_IFMT) !== S_IFDIR) throw new FilesystemError('ENOTDIR', this.image, `inode ${ino} is a ${fileTypeOfMode(d.inode.mode)}, not a directory`);
    return d;
  }

  /** The inode number a directory entry leads to: an inode of the same tree, or the root of the subvolume linked there. */
  private async target(tree: bigint, dirObjectid: bigint, e: DirItem): Promise<number> {
    if (e.location.type === KEY.ROOT_ITEM) {
      const sub = e.location.objectid;
      const st = this.state;
      const linked = (await this.treeOf(st, sub)) !== undefined && (await isLinkedAt(st.vol, st.boot.rootTree, tree, sub, dirObjectid, e.name));
      // A snapshot keeps the entries of subvolumes that were nested in its source, but not the subvolumes: the kernel shows an empty directory.
      return linked ? st.numbers.encode(sub, OBJECTID.FIRST_FREE) : st.numbers.encode(tree, BigInt(EMPTY_SUBVOL_DIR_OBJECTID));
    }
    if (e.location.type !== KEY.INODE_ITEM) throw this.state.vol.corrupt(`directory entry "${decodeName(e.name)}" of inode ${dirObjectid}`, undefined, `its location has key type ${e.location.type}`);
    return this.state.numbers.encode(tree, e.location.objectid);
  }

  async readdir(ino: number): Promise<DirEntry[]> {
    const d = await this.directory(ino);
    if (d.objectid === BigInt(EMPTY_SUBVOL_DIR_OBJECTID)) return [];
    const out: DirEntry[] = [];
    const max = this.state.vol.limits.maxDirectoryEntries;
    for await (const it of itemsOf(this.state.vol, d.root, d.objectid, KEY.DIR_INDEX)) {
      for (const e of decodeItem(this.state.vol, it, `directory index ${it.key.offset} of inode ${d.objectid}`, (b) => parseDirItems(b))) {
        if (out.length >= max) throw directoryTooLarge(this.image, `directory inode ${ino}`, max);
        out.push({ name: decodeName(e.name), rawName: e.name, ino: await this.target(d.tree, d.objectid, e), type: FT_TYPES[e.type] ?? 'unknown' });
      }
    }
    return out;
  }

  async lookup(dirIno: number, name: string): Promise<number | undefined> {
    for (const raw of nameCandidates(name)) {
      const hit = await this.lookupRaw(dirIno, raw);
      if (hit !== undefined) return hit;
    }
    return undefined;
  }

  async lookupRaw(dirIno: number, name: Buffer): Promise<number | undefined> {
    const d = await this.directory(dirIno);
    if (d.objectid === BigInt(EMPTY_SUBVOL_DIR_OBJECTID) || name.length === 0 || name.length > 255) return undefined;
    const found = await exactItem(this.state.vol, d.root, { objectid: d.objectid, type: KEY.DIR_ITEM, offset: nameHash(name) });
    if (!found) return undefined;
    const e = decodeItem(this.state.vol, found, `directory item of inode ${d.objectid}`, (b) => parseDirItems(b)).find((x) => x.name.equals(name));
    return e ? this.target(d.tree, d.objectid, e) : undefined;
  }

  async read(ino: number, offset: number, length: number): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new FilesystemError('EINVAL', this.image, `read of inode ${ino}: invalid offset ${offset} or length ${length}`);
    }
    const f = await this.inodeItem(ino);
    const fmt = f.inode.mode & S_IFMT;
    if (fmt === S_IFDIR) throw new FilesystemError('EISDIR', this.image, `inode ${ino} is a directory, not a file`);
    if (fmt !== S_IFREG) throw new FilesystemError('EINVAL', this.image, `inode ${ino} is a ${fileTypeOfMode(f.inode.mode)}, not a regular file`);
    return this.readData(f, ino, offset, length);
  }

  private async readData(f: { objectid: bigint; root: TreeRoot; inode: InodeItem }, ino: number, offset: number, length: number): Promise<Buffer> {
    const size = safe(f.inode.size, `size of inode ${ino}`, this.image);
    const n = Math.max(0, Math.min(length, size - offset));
    const max = this.state.vol.limits.maxReadBytes;
    if (n > max) throw new FilesystemError('EFBIG', this.image, `read of ${n} bytes from inode ${ino} is over the ${max}-byte limit of one read; read it in pieces`);
    return readFileRange(this.state.vol, f.root, f.objectid, offset, n, this.state.extents);
  }

  async readlink(ino: number): Promise<string> {
    const f = await this.inodeItem(ino);
    if ((f.inode.mode & S_IFMT) !== S_IFLNK) throw new FilesystemError('EINVAL', this.image, `inode ${ino} is a ${fileTypeOfMode(f.inode.mode)}, not a symbolic link`);
    if (f.inode.size === 0n || f.inode.size >= BigInt(PATH_MAX)) throw this.state.vol.corrupt(`symbolic link inode ${f.objectid} of ${f.root.name}`, undefined, `its target is ${f.inode.size} bytes long`);
    return decodeName(await this.readData(f, ino, 0, Number(f.inode.size)));
  }

  // ---- optional capabilities --------------------------------------------------

  async listxattr(ino: number): Promise<string[]> {
    const w = this.where(ino);
    if (w.objectid === BigInt(EMPTY_SUBVOL_DIR_OBJECTID)) return [];
    const root = await this.tree(w.tree);
    const names: string[] = [];
    for await (const it of itemsOf(this.state.vol, root, w.objectid, KEY.XATTR_ITEM)) {
      for (const e of decodeItem(this.state.vol, it, `xattr item of inode ${w.objectid}`, (b) => parseDirItems(b))) names.push(decodeName(e.name));
    }
    return names;
  }

  async getxattr(ino: number, name: string): Promise<Buffer> {
    const w = this.where(ino);
    const root = await this.tree(w.tree);
    for (const raw of nameCandidates(name)) {
      const found = await exactItem(this.state.vol, root, { objectid: w.objectid, type: KEY.XATTR_ITEM, offset: nameHash(raw) });
      if (!found) continue;
      const e = decodeItem(this.state.vol, found, `xattr item of inode ${w.objectid}`, (b) => parseDirItems(b)).find((x) => x.name.equals(raw));
      if (e) return e.data;
    }
    throw new FilesystemError('ENODATA', this.image, `inode ${ino} has no extended attribute "${name}"`);
  }

  async extents(ino: number, offset = 0, length?: number): Promise<FileExtent[]> {
    const f = await this.inodeItem(ino);
    if ((f.inode.mode & S_IFMT) !== S_IFREG) throw new FilesystemError('EINVAL', this.image, `inode ${ino} is a ${fileTypeOfMode(f.inode.mode)}, not a regular file`);
    const size = safe(f.inode.size, `size of inode ${ino}`, this.image);
    const end = Math.min(size, length === undefined ? size : offset + length);
    if (end <= offset) return [];
    const devid = [...this.state.vol.devices.entries()].find(([, s]) => s === this.source)?.[0] ?? -1n;
    return fileExtentMap(this.state.vol, f.root, f.objectid, offset, end, devid);
  }

  /** Every inode of the subvolume shown, in objectid order (btrfs keeps nothing of deleted inodes). */
  async *inodes(_options: InodeEnumerationOptions = {}): AsyncIterable<InodeEntry> {
    const root = await this.tree(this.state.mounted);
    for await (const it of itemsInRange(this.state.vol, root, { objectid: OBJECTID.FIRST_FREE, type: KEY.INODE_ITEM, offset: 0n }, { objectid: OBJECTID.LAST_FREE, type: KEY.INODE_ITEM, offset: MAX_U64 })) {
      if (it.key.type !== KEY.INODE_ITEM) continue;
      const ino = this.state.numbers.encode(this.state.mounted, it.key.objectid);
      yield { ino, deleted: false, stat: await this.getattr(ino) };
    }
  }

  async subvolumes(): Promise<Subvolume[]> {
    const st = this.state;
    return listSubvolumes(st.vol, st.boot.rootTree, st.records, st.defaultId);
  }

  // ---- statfs -----------------------------------------------------------------

  async statfs(): Promise<StatFs> {
    const st = this.state;
    return computeStatfs({ vol: st.vol, rootTree: st.boot.rootTree, devItems: st.boot.devItems, inexactReasons: st.inexactReasons, readOnlyMount: this.options.statfs === 'read-only-mount' });
  }

  /** The figures statfs is made of (space infos, global reserve, unallocated space). */
  async space(): Promise<BtrfsSpace> {
    const st = this.state;
    return computeSpace({ vol: st.vol, rootTree: st.boot.rootTree, devItems: st.boot.devItems, inexactReasons: st.inexactReasons });
  }
}

function safe(v: bigint, what: string, image: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FilesystemError('EOVERFLOW', image, `${what} is ${v}, beyond 2^53`);
  return Number(v);
}

/** What the kernel shows where a snapshot has the entry of a subvolume it does not contain (new_simple_dir: an empty, read-only directory). */
function emptySubvolDir(): InodeItem {
  const zero = { sec: 0, nsec: 0 };
  return { generation: 0n, size: 0n, nbytes: 0n, nlink: 1, uid: 0, gid: 0, mode: S_IFDIR | 0o755, rdev: 0n, flags: 0n, atime: zero, ctime: zero, mtime: zero, otime: zero };
}
