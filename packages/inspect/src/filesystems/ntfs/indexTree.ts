/**
 * An NTFS index (a directory's $I30, $Secure's $SII, ...) as the B+ tree it
 * is: the root node in $INDEX_ROOT, further nodes in INDX blocks of
 * $INDEX_ALLOCATION, and a $BITMAP saying which blocks are in use. Two ways
 * through it: every entry, root first and then the blocks in use in VCN
 * order (what ntfs-3g's readdir does, so listings come out in its order), and
 * a descent by key. Depth and the blocks visited are bounded, so a cycle of
 * child pointers ends in an error, not a hang.
 */
import { readStream } from './streamData.ts';
import { parseIndexBlock, parseIndexEntries, type IndexEntry, type IndexKeyKind } from './indexEntries.ts';
import { attributeOf, type NtfsAttribute, type NtfsInode } from './inode.ts';
import { ATTR_TYPE, INDEX_ROOT, NTFS_BLOCK_SIZE } from './layout.ts';
import type { NtfsVolume } from './volume.ts';

const MAX_DEPTH = 32;

export class IndexTree {
  private constructor(
    private readonly vol: NtfsVolume,
    readonly inode: NtfsInode,
    readonly name: string,
    private readonly kind: IndexKeyKind,
    readonly collationRule: number,
    readonly indexedType: number,
    readonly blockSize: number,
    private readonly vcnBits: number,
    readonly rootEntries: IndexEntry[],
    private readonly allocation: NtfsAttribute | undefined,
    private readonly bitmap: NtfsAttribute | undefined,
    private readonly where: string,
  ) {}

  /** The index `name` of `inode`; undefined when it has no $INDEX_ROOT of that name. */
  static open(vol: NtfsVolume, inode: NtfsInode, name: string, kind: IndexKeyKind): IndexTree | undefined {
    const root = attributeOf(inode, ATTR_TYPE.INDEX_ROOT, name);
    if (!root) return undefined;
    const where = `index ${name} of MFT record ${inode.number}`;
    const v = root.value!;
    if (v.length < INDEX_ROOT.index + 16) throw vol.corrupt(where, undefined, `its $INDEX_ROOT is ${v.length} bytes, too short`);
    const blockSize = v.readUInt32LE(INDEX_ROOT.index_block_size);
    if (blockSize < NTFS_BLOCK_SIZE || blockSize > 65536 || blockSize & (blockSize - 1)) throw vol.corrupt(where, undefined, `index block size ${blockSize} is invalid`);
    const entries = parseIndexEntries(v, INDEX_ROOT.index, kind);
    if (typeof entries === 'string') throw vol.corrupt(`${where}, root node`, undefined, entries);
    // A VCN counts clusters, unless clusters are larger than index blocks: then 512-byte units.
    const vcnBits = vol.clusterSize <= blockSize ? vol.boot.clusterBits : 9;
    const allocation = attributeOf(inode, ATTR_TYPE.INDEX_ALLOCATION, name);
    if (allocation && !allocation.nonResident) throw vol.corrupt(where, undefined, '$INDEX_ALLOCATION is resident');
    if (allocation && allocation.dataSize > vol.limits.maxIndexBytes) throw vol.corrupt(where, undefined, `$INDEX_ALLOCATION of ${allocation.dataSize} bytes is over the ${vol.limits.maxIndexBytes}-byte bound`);
    const bitmap = attributeOf(inode, ATTR_TYPE.BITMAP, name);
    return new IndexTree(vol, inode, name, kind, v.readUInt32LE(INDEX_ROOT.collation_rule), v.readUInt32LE(INDEX_ROOT.type), blockSize, vcnBits, entries, allocation, bitmap, where);
  }

  get hasAllocation(): boolean {
    return this.allocation !== undefined;
  }

  /** The index block at `vcn`, fixed up and parsed (cached on the volume). */
  async block(vcn: number): Promise<IndexEntry[]> {
    if (!this.allocation) throw this.vol.corrupt(this.where, undefined, `an entry points at child VCN ${vcn} but there is no $INDEX_ALLOCATION`);
    const offset = vcn * 2 ** this.vcnBits;
    if (!Number.isSafeInteger(offset) || offset + this.blockSize > this.allocation.dataSize) {
      throw this.vol.corrupt(this.where, undefined, `child VCN ${vcn} is beyond its $INDEX_ALLOCATION (${this.allocation.dataSize} bytes)`);
    }
    const key = `${this.inode.number}:${this.name}:${vcn}`;
    const cache = this.vol.indexBlocks;
    const hit = cache.get(key);
    if (hit) return hit;
    const p = (async () => {
      const raw = await readStream(this.vol, this.allocation!, offset, this.blockSize, `${this.where}, block at VCN ${vcn}`);
      const parsed = parseIndexBlock(raw, vcn, this.kind);
      if ('reason' in parsed) {
        const structure = `${this.where}, block at VCN ${vcn}`;
        throw parsed.torn ? this.vol.fixupError(structure, undefined, parsed.torn.expected, parsed.torn.found) : this.vol.corrupt(structure, undefined, parsed.reason);
      }
      return parsed.entries;
    })();
    cache.set(key, p);
    p.catch(() => cache.delete(key, p));
    return p;
  }

  /** Every entry with a key: the root's, then each block in use, in VCN order. */
  async *entries(): AsyncGenerator<IndexEntry> {
    for (const e of this.rootEntries) if (!e.isEnd) yield e;
    if (!this.allocation) return;
    const blocks = Math.floor(this.allocation.dataSize / this.blockSize);
    const inUse = await this.blocksInUse(blocks);
    const vcnPerBlock = this.blockSize / 2 ** this.vcnBits;
    for (let b = 0; b < blocks; b++) {
      if (!inUse(b)) continue;
      for (const e of await this.block(b * vcnPerBlock)) if (!e.isEnd) yield e;
    }
  }

  private async blocksInUse(blocks: number): Promise<(b: number) => boolean> {
    if (!this.bitmap) throw this.vol.corrupt(this.where, undefined, 'it has an $INDEX_ALLOCATION but no $BITMAP');
    const bits = await readStream(this.vol, this.bitmap, 0, Math.min(this.bitmap.dataSize, Math.ceil(blocks / 8)), `$BITMAP of ${this.where}`);
    return (b) => b >> 3 < bits.length && (bits[b >> 3] & (1 << (b & 7))) !== 0;
  }

  /**
   * The first entry (in index order) for which `compare(key)` is 0, where
   * `compare` says whether the sought key sorts before (-1), at (0) or after
   * (1) an entry's key.
   */
  async find(compare: (entryKey: Buffer) => number): Promise<IndexEntry | undefined> {
    const visited = new Set<number>();
    const search = async (entries: IndexEntry[], depth: number): Promise<IndexEntry | undefined> => {
      for (const e of entries) {
        const c = e.isEnd ? -1 : compare(e.key);
        if (c > 0) continue;
        if (c === 0 && e.childVcn === undefined) return e;
        if (e.childVcn !== undefined) {
          if (depth >= MAX_DEPTH) throw this.vol.corrupt(this.where, undefined, `the B+ tree is deeper than ${MAX_DEPTH} levels`);
          if (visited.has(e.childVcn)) throw this.vol.corrupt(this.where, undefined, `child VCN ${e.childVcn} is reached twice (a cycle)`);
          visited.add(e.childVcn);
          // Keys equal to the sought one may sort before this entry, in its child (case-insensitive search).
          const below = await search(await this.block(e.childVcn), depth + 1);
          if (below || c !== 0) return below;
        }
        return c === 0 ? e : undefined;
      }
      return undefined;
    };
    return search(this.rootEntries, 0);
  }
}
