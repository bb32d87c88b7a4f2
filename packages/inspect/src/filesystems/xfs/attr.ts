/**
 * Extended attributes, in the inode's attribute fork: short form (packed
 * entries in the inode), leaf form (one block of hash-sorted entries whose
 * names and values grow from the end of the block) and node form (a da
 * btree of such leaves). Values of leaf entries are local (in the leaf) or
 * remote (in their own blocks of the attribute fork; on v5 every block of a
 * remote value carries a header with CRC, owner, address and the value
 * bytes it holds). Entries marked incomplete (a crash in the middle of a
 * set) are not shown, as the kernel does not show them. Checked as the
 * kernel's verifiers check them (xfs_attr_shortform_verify,
 * xfs_attr3_leaf_verify, xfs_attr3_rmt_verify).
 */
import { mapFork, type ForkContext } from './bmap.ts';
import { readDaBlock, type DaBlock } from './daBlock.ts';
import { daMagic, forwPointer, isNodeMagic, parseDaNode, verifyDa3Blkinfo } from './daTree.ts';
import type { Inode } from './inode.ts';
import {
  ATTR3_LEAF_HDR_LEN,
  ATTR3_RMT_HDR,
  ATTR_FLAG,
  ATTR_LEAF_ENTRY_LEN,
  ATTR_LEAF_HDR_LEN,
  ATTR_SF_HDR_LEN,
  FMT,
  XFS_ATTR3_LEAF_MAGIC,
  XFS_ATTR3_RMT_MAGIC,
  XFS_ATTR_LEAF_MAGIC,
  XFS_DA_NODE_MAXDEPTH,
} from './layout.ts';
import type { XfsVolume } from './volume.ts';

/** XFS_XATTR_SIZE_MAX: a value is at most 64 KiB. */
const XATTR_SIZE_MAX = 65536;
const NAMESPACE_MASK = ATTR_FLAG.ROOT | ATTR_FLAG.SECURE | ATTR_FLAG.PARENT;

export interface RawAttr {
  flags: number;
  name: Buffer;
  /** The value when it is stored with the name. */
  value?: Buffer;
  /** Where a remote value lives: first block in the attribute fork and its length. */
  remote?: { valueblk: number; valuelen: number };
}

function onlyOneNamespace(flags: number): boolean {
  const ns = flags & NAMESPACE_MASK;
  return (ns & (ns - 1)) === 0;
}

/** Every complete attribute of an inode, in on-disk order. */
export async function readAttributes(vol: XfsVolume, inode: Inode): Promise<RawAttr[]> {
  const fork = inode.attr;
  if (!fork) return [];
  if (fork.format === FMT.LOCAL) return parseShortformAttrs(vol, inode);
  if (fork.format !== FMT.EXTENTS && fork.format !== FMT.BTREE) throw vol.corrupt(`attribute fork of inode ${inode.ino}`, inode.byteOffset, `format ${fork.format}`);
  if (fork.nextents === 0) return [];
  const ctx: ForkContext = { vol, inode, fork };
  const what = `attribute block of inode ${inode.ino}`;
  // Block 0 is the only leaf, or the root of the node tree: walk down its first pointers to the leftmost leaf.
  let block = await readDaBlock(ctx, 0, 1, what);
  if (!block) throw vol.corrupt(what, undefined, 'block 0 of the attribute fork is a hole');
  let expectLevel: number | undefined;
  for (let depth = 0; isNodeMagic(daMagic(block)); depth++) {
    if (depth >= XFS_DA_NODE_MAXDEPTH) throw vol.corrupt(what, block.byteOffset, `the attribute tree is deeper than ${XFS_DA_NODE_MAXDEPTH} levels`);
    const node = parseDaNode(ctx, block, what);
    if (expectLevel !== undefined && node.level !== expectLevel) throw vol.corrupt(what, block.byteOffset, `node level ${node.level} where ${expectLevel} was expected`);
    expectLevel = node.level - 1;
    const next = await readDaBlock(ctx, node.entries[0].before, 1, what);
    if (!next) throw vol.corrupt(what, block.byteOffset, `a node points at block ${node.entries[0].before}, a hole`);
    block = next;
  }
  if (expectLevel !== undefined && expectLevel !== 0) throw vol.corrupt(what, block.byteOffset, `a leaf where a level ${expectLevel} node was expected`);
  const out: RawAttr[] = [];
  const visited = new Set<number>();
  let prevHash = 0;
  for (;;) {
    const leaf = parseAttrLeaf(ctx, block, what);
    for (const e of leaf.entries) {
      if (e.hashval < prevHash) throw vol.corrupt(what, block.byteOffset, 'attribute leaves are out of hash order');
      prevHash = e.hashval;
      if (!(e.attr.flags & ATTR_FLAG.INCOMPLETE)) out.push(e.attr);
    }
    const forw = forwPointer(block);
    if (forw === 0) return out;
    if (visited.has(forw) || visited.size > 1 << 20) throw vol.corrupt(what, block.byteOffset, `leaf sibling pointers loop at block ${forw}`);
    visited.add(forw);
    const next = await readDaBlock(ctx, forw, 1, what);
    if (!next) throw vol.corrupt(what, block.byteOffset, `its forward pointer names block ${forw}, a hole`);
    block = next;
  }
}

function parseShortformAttrs(vol: XfsVolume, inode: Inode): RawAttr[] {
  const b = inode.attr!.bytes;
  const where = `short-form attributes of inode ${inode.ino}`;
  const bad = (detail: string) => vol.corrupt(where, inode.byteOffset, detail);
  if (b.length < ATTR_SF_HDR_LEN) throw bad('no room for the header');
  const totsize = b.readUInt16BE(0);
  const count = b[2];
  if (totsize < ATTR_SF_HDR_LEN || totsize > b.length) throw bad(`total size ${totsize} does not fit a ${b.length}-byte fork`);
  const out: RawAttr[] = [];
  let off = ATTR_SF_HDR_LEN;
  for (let i = 0; i < count; i++) {
    if (off + 3 >= totsize) throw bad(`entry ${i} starts past the end`);
    const namelen = b[off];
    const valuelen = b[off + 1];
    const flags = b[off + 2];
    if (namelen === 0) throw bad(`entry ${i} has an empty name`);
    const next = off + 3 + namelen + valuelen;
    if (next > totsize) throw bad(`entry ${i} runs past the end`);
    if (flags & ~NAMESPACE_MASK || !onlyOneNamespace(flags)) throw bad(`entry ${i} has flags 0x${flags.toString(16)}`);
    out.push({ flags, name: Buffer.from(b.subarray(off + 3, off + 3 + namelen)), value: Buffer.from(b.subarray(off + 3 + namelen, next)) });
    off = next;
  }
  if (off !== totsize) throw bad(`the entries end at byte ${off}, the total size is ${totsize}`);
  return out;
}

interface AttrLeaf {
  entries: { hashval: number; attr: RawAttr }[];
}

function parseAttrLeaf(ctx: ForkContext, block: DaBlock, what: string): AttrLeaf {
  const { vol } = ctx;
  const b = block.buf;
  const v5 = vol.sb.hasCrc;
  const bad = (detail: string) => vol.corrupt(what, block.byteOffset, detail);
  const magic = daMagic(block);
  if (magic !== (v5 ? XFS_ATTR3_LEAF_MAGIC : XFS_ATTR_LEAF_MAGIC)) throw bad(`bad leaf magic 0x${magic.toString(16)}`);
  if (v5) verifyDa3Blkinfo(ctx, block, what);
  const hdr = v5 ? ATTR3_LEAF_HDR_LEN : ATTR_LEAF_HDR_LEN;
  const base = v5 ? 56 : 12;
  const count = b.readUInt16BE(base);
  let firstused = b.readUInt16BE(base + 4);
  // With 64 KiB blocks the end of the block does not fit 16 bits: 0 stands for it.
  if (v5 && firstused === 0) firstused = b.length;
  if (firstused > b.length || hdr + count * ATTR_LEAF_ENTRY_LEN > firstused) throw bad(`${count} entries and names from byte ${firstused} overlap`);
  const entries: AttrLeaf['entries'] = [];
  let prev = 0;
  for (let i = 0; i < count; i++) {
    const e = hdr + i * ATTR_LEAF_ENTRY_LEN;
    const hashval = b.readUInt32BE(e);
    const nameidx = b.readUInt16BE(e + 4);
    const flags = b[e + 6];
    if (hashval < prev) throw bad(`entry ${i} is out of hash order`);
    prev = hashval;
    if (nameidx < firstused || nameidx >= b.length) throw bad(`entry ${i} names byte ${nameidx}, outside the name area`);
    if (!onlyOneNamespace(flags)) throw bad(`entry ${i} is in several namespaces`);
    if (flags & ATTR_FLAG.LOCAL) {
      if (nameidx + 3 > b.length) throw bad(`entry ${i} runs past the end`);
      const valuelen = b.readUInt16BE(nameidx);
      const namelen = b[nameidx + 2];
      if (namelen === 0 || nameidx + 3 + namelen + valuelen > b.length) throw bad(`entry ${i} (name ${namelen} bytes, value ${valuelen}) runs past the end`);
      entries.push({ hashval, attr: { flags, name: Buffer.from(b.subarray(nameidx + 3, nameidx + 3 + namelen)), value: Buffer.from(b.subarray(nameidx + 3 + namelen, nameidx + 3 + namelen + valuelen)) } });
    } else {
      if (nameidx + 9 > b.length) throw bad(`entry ${i} runs past the end`);
      const valueblk = b.readUInt32BE(nameidx);
      const valuelen = b.readUInt32BE(nameidx + 4);
      const namelen = b[nameidx + 8];
      if (namelen === 0 || nameidx + 9 + namelen > b.length) throw bad(`entry ${i} (name ${namelen} bytes) runs past the end`);
      if (valuelen > XATTR_SIZE_MAX) throw bad(`entry ${i} has a ${valuelen}-byte value, over the 64 KiB limit`);
      const attr: RawAttr = { flags, name: Buffer.from(b.subarray(nameidx + 9, nameidx + 9 + namelen)), remote: { valueblk, valuelen } };
      if (valuelen === 0) attr.value = Buffer.alloc(0);
      entries.push({ hashval, attr });
    }
  }
  return { entries };
}

/** The value of an attribute, reading its remote blocks when it has them. */
export async function attributeValue(vol: XfsVolume, inode: Inode, attr: RawAttr): Promise<Buffer> {
  if (attr.value) return attr.value;
  const { valueblk, valuelen } = attr.remote!;
  const v5 = vol.sb.hasCrc;
  const perBlock = vol.blockSize - (v5 ? ATTR3_RMT_HDR.size : 0);
  const blocks = Math.ceil(valuelen / perBlock);
  const where = `remote attribute value of inode ${inode.ino}`;
  const ctx: ForkContext = { vol, inode, fork: inode.attr! };
  const records = await mapFork(ctx, valueblk, blocks);
  const out = Buffer.alloc(valuelen);
  let copied = 0;
  let lblk = valueblk;
  for (const r of records) {
    if (r.startoff > lblk) break;
    const skip = lblk - r.startoff;
    const count = Math.min(r.blockcount - skip, valueblk + blocks - lblk);
    const first = vol.fsbToLinear(r.startblock + skip)!;
    for (let i = 0; i < count; i++) {
      const linear = first + i;
      const byteOffset = linear * vol.blockSize;
      const buf = await vol.readBytes(byteOffset, vol.blockSize);
      const bytes = Math.min(perBlock, valuelen - copied);
      if (v5) {
        const bad = (detail: string) => vol.corrupt(where, byteOffset, detail);
        vol.verifyCrc(buf, ATTR3_RMT_HDR.rm_crc, where, byteOffset);
        if (buf.readUInt32BE(ATTR3_RMT_HDR.rm_magic) !== XFS_ATTR3_RMT_MAGIC) throw bad('bad magic');
        if (!buf.subarray(ATTR3_RMT_HDR.rm_uuid, ATTR3_RMT_HDR.rm_uuid + 16).equals(vol.sb.metaUuid)) throw bad('its UUID is not the filesystem\'s');
        if (buf.readBigUInt64BE(ATTR3_RMT_HDR.rm_blkno) !== BigInt(linear * vol.bbPerBlock)) throw bad('it records another disk address');
        if (buf.readUInt32BE(ATTR3_RMT_HDR.rm_offset) !== copied || buf.readUInt32BE(ATTR3_RMT_HDR.rm_bytes) !== bytes || buf.readBigUInt64BE(ATTR3_RMT_HDR.rm_owner) !== BigInt(inode.ino)) {
          throw bad(`its header says ${buf.readUInt32BE(ATTR3_RMT_HDR.rm_bytes)} bytes at ${buf.readUInt32BE(ATTR3_RMT_HDR.rm_offset)} of inode ${buf.readBigUInt64BE(ATTR3_RMT_HDR.rm_owner)}, not ${bytes} at ${copied} of inode ${inode.ino}`);
        }
        buf.copy(out, copied, ATTR3_RMT_HDR.size, ATTR3_RMT_HDR.size + bytes);
      } else {
        buf.copy(out, copied, 0, bytes);
      }
      copied += bytes;
    }
    lblk += count;
    if (lblk >= valueblk + blocks) break;
  }
  if (copied !== valuelen) throw vol.corrupt(where, undefined, `only ${copied} of its ${valuelen} bytes are mapped`);
  return out;
}
