/**
 * The tree property's model: a random file tree (directories, files of every
 * interesting size, sparse ones, names up to 255 bytes of UTF-8, short and
 * long symlinks, hard links, xattrs, owners, modes, times to the
 * nanosecond, now and then a directory of thousands of entries) and the
 * filesystem it is written to (ext4, XFS and btrfs variants) as fast-check
 * arbitraries, and the writer that puts it through a read-write kernel mount.
 */
import fc from 'fast-check';
import { link, mkdir, open, symlink, chmod, lchown, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { guestLikeData } from '../../packages/qcow2-js/test/support/qemu.ts';
import { sh } from '../support/run.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

export interface FsVariant {
  name: string;
  type: 'ext4' | 'xfs' | 'btrfs';
  mkfs: string[];
  /** Image size in MiB (sparse). */
  sizeMiB: number;
  /** Options of the read-write mount the tree is written through. */
  mountOptions: string[];
  blockSize: number;
  /** The filesystem keeps a birth time (ext4 needs inodes larger than 128 bytes). */
  birthTime: boolean;
  /** Longest xattr value this variant takes in the sizes generated (ext4 keeps all of an inode's in one block). */
  maxXattrValue: number;
  /** Longest symlink target (XFS: 1024 bytes; ext4: a block less one). */
  maxSymlink: number;
}

export const FS_VARIANTS: readonly FsVariant[] = [
  { name: 'ext4 4 KiB blocks, metadata_csum', type: 'ext4', mkfs: ['mkfs.ext4', '-q', '-F', '-b', '4096', '-I', '256'], sizeMiB: 128, mountOptions: [], blockSize: 4096, birthTime: true, maxXattrValue: 900, maxSymlink: 1000 },
  { name: 'ext4 inline_data', type: 'ext4', mkfs: ['mkfs.ext4', '-q', '-F', '-b', '4096', '-I', '256', '-O', 'inline_data'], sizeMiB: 128, mountOptions: [], blockSize: 4096, birthTime: true, maxXattrValue: 900, maxSymlink: 1000 },
  { name: 'ext4 1 KiB blocks, no metadata_csum', type: 'ext4', mkfs: ['mkfs.ext4', '-q', '-F', '-b', '1024', '-I', '256', '-O', '^metadata_csum'], sizeMiB: 128, mountOptions: [], blockSize: 1024, birthTime: true, maxXattrValue: 200, maxSymlink: 1000 },
  { name: 'ext4 1 KiB blocks, 128-byte inodes', type: 'ext4', mkfs: ['mkfs.ext4', '-q', '-F', '-b', '1024', '-I', '128'], sizeMiB: 128, mountOptions: [], blockSize: 1024, birthTime: false, maxXattrValue: 200, maxSymlink: 1000 },
  { name: 'xfs v5', type: 'xfs', mkfs: ['mkfs.xfs', '-q', '-f', '-m', 'crc=1'], sizeMiB: 320, mountOptions: [], blockSize: 4096, birthTime: true, maxXattrValue: 2000, maxSymlink: 1000 },
  { name: 'xfs v5, 1 KiB blocks, 8 KiB directory blocks', type: 'xfs', mkfs: ['mkfs.xfs', '-q', '-f', '-m', 'crc=1', '-b', 'size=1024', '-n', 'size=8192'], sizeMiB: 320, mountOptions: [], blockSize: 1024, birthTime: true, maxXattrValue: 2000, maxSymlink: 1000 },
  { name: 'btrfs', type: 'btrfs', mkfs: ['mkfs.btrfs', '-q', '-f'], sizeMiB: 256, mountOptions: [], blockSize: 4096, birthTime: true, maxXattrValue: 2000, maxSymlink: 1000 },
  { name: 'btrfs compress=zstd', type: 'btrfs', mkfs: ['mkfs.btrfs', '-q', '-f'], sizeMiB: 256, mountOptions: ['compress=zstd'], blockSize: 4096, birthTime: true, maxXattrValue: 2000, maxSymlink: 1000 },
  { name: 'btrfs compress=zlib', type: 'btrfs', mkfs: ['mkfs.btrfs', '-q', '-f'], sizeMiB: 256, mountOptions: ['compress=zlib'], blockSize: 4096, birthTime: true, maxXattrValue: 2000, maxSymlink: 1000 },
  { name: 'btrfs compress=lzo', type: 'btrfs', mkfs: ['mkfs.btrfs', '-q', '-f'], sizeMiB: 256, mountOptions: ['compress=lzo'], blockSize: 4096, birthTime: true, maxXattrValue: 2000, maxSymlink: 1000 },
];

export interface Meta {
  mode: number;
  uid: number;
  gid: number;
  /** Set with touch -h (atime and mtime); else the kernel's time of writing. */
  time?: { sec: number; nsec: number };
  xattrs: Array<{ name: string; value: string /* hex */ }>;
}

export interface Segment {
  offset: number;
  length: number;
  seed: number;
}

/** Every entry's path is relative to the root, "/" separated. */
export type Entry =
  | { kind: 'dir'; path: string; meta: Meta }
  | { kind: 'file'; path: string; size: number; segments: Segment[]; meta: Meta }
  | { kind: 'symlink'; path: string; target: string; meta: Meta }
  | { kind: 'hardlink'; path: string; to: string }
  | { kind: 'many'; path: string; count: number; nameLength: number };

export interface TreeCase {
  variant: FsVariant;
  entries: Entry[];
}

// ---- arbitraries --------------------------------------------------------

const NAME_UNITS = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-', ' ', 'é', 'ß', 'ü', '中', '文', '🙂', '𝄞'];

/** The longest prefix of `s` of at most `max` UTF-8 bytes, cut between code points. */
function utf8Prefix(s: string, max: number): string {
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch) > max) break;
    out += ch;
  }
  return out;
}

const unit = fc.constantFrom(...NAME_UNITS);
export const nameArb: fc.Arbitrary<string> = fc
  .oneof(
    { weight: 6, arbitrary: fc.string({ unit, minLength: 1, maxLength: 20 }) },
    // Long names, up to the limit of 255 bytes (cut at a code point, so 252..255).
    { weight: 1, arbitrary: fc.tuple(fc.string({ unit, minLength: 1, maxLength: 6 }), fc.integer({ min: 200, max: 255 })).map(([s, n]) => utf8Prefix(s.repeat(256), n)) },
  )
  .filter((n) => n !== '.' && n !== '..');

const timeArb = fc.record({
  sec: fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 2 ** 34 }), fc.integer({ min: 1_600_000_000, max: 1_800_000_000 })),
  nsec: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 999_999_999 })),
});

const idArb = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 65536, max: 2 ** 32 - 2 }));

function metaArb(v: FsVariant): fc.Arbitrary<Meta> {
  const xattr = fc.record({
    name: fc.tuple(fc.constantFrom('user.', 'trusted.'), fc.stringMatching(/^[a-z0-9_.]{1,16}$/)).map(([ns, n]) => ns + n),
    value: fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: v.maxXattrValue })).map((b) => Buffer.from(b).toString('hex')),
  });
  return fc.record({
    mode: fc.integer({ min: 0, max: 0o7777 }),
    uid: idArb,
    gid: idArb,
    time: fc.option(timeArb, { freq: 2 }).map((t) => t ?? undefined),
    xattrs: fc.uniqueArray(xattr, { maxLength: 3, selector: (x) => x.name }),
  });
}

/** File sizes: empty, inline-sized, around the block size, larger, and sparse ones with data segments. */
function fileContentArb(v: FsVariant): fc.Arbitrary<{ size: number; segments: Segment[] }> {
  const b = v.blockSize;
  const dense = (size: number) => fc.nat().map((seed) => ({ size, segments: size ? [{ offset: 0, length: size, seed }] : [] }));
  return fc.oneof(
    fc.constant<{ size: number; segments: Segment[] }>({ size: 0, segments: [] }),
    fc.integer({ min: 1, max: 60 }).chain(dense),
    fc.integer({ min: 61, max: 3000 }).chain(dense),
    fc.constantFrom(b - 1, b, b + 1, 2 * b + 1, 12 * b, 12 * b + 1).chain(dense),
    fc.integer({ min: 1, max: 300 * KiB }).chain(dense),
    fc.integer({ min: 1, max: 64 * MiB }).chain((size) =>
      fc
        .array(fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), length: fc.integer({ min: 1, max: 200 * KiB }), seed: fc.nat() }), { maxLength: 3 })
        .map((segs) => ({
          size,
          segments: segs.map((s) => {
            const length = Math.min(s.length, size);
            return { offset: Math.floor(s.at * (size - length)), length, seed: s.seed };
          }),
        })),
    ),
  );
}

function targetArb(v: FsVariant): fc.Arbitrary<string> {
  const part = fc.string({ unit, minLength: 1, maxLength: 12 });
  return fc.oneof(
    fc.array(fc.oneof(part, fc.constant('..')), { minLength: 1, maxLength: 4 }).map((p) => p.join('/')),
    fc.integer({ min: 60, max: v.maxSymlink }).chain((n) => part.map((p) => utf8Prefix(`/${p}`.repeat(n), n))),
  );
}

interface RawEntry {
  kind: 'dir' | 'file' | 'symlink' | 'hardlink';
  /** Chooses the parent among the directories made before it. */
  parent: number;
  name: string;
  pick: number;
}

/**
 * A tree: a list of entries each placed under an earlier directory (so
 * shrinking drops entries and keeps a valid tree); duplicate names in a
 * directory keep the first; hard links point at an earlier file.
 */
export function treeCaseArb(variants: readonly FsVariant[] = FS_VARIANTS): fc.Arbitrary<TreeCase> {
  return fc.constantFrom(...variants).chain((variant) =>
    fc
      .record({
        raw: fc.array(
          fc.record({ kind: fc.constantFrom<RawEntry['kind']>('dir', 'dir', 'file', 'file', 'file', 'symlink', 'hardlink'), parent: fc.nat(), name: nameArb, pick: fc.nat() }),
          { maxLength: 40 },
        ),
        metas: fc.array(metaArb(variant), { minLength: 40, maxLength: 40 }),
        contents: fc.array(fileContentArb(variant), { minLength: 40, maxLength: 40 }),
        targets: fc.array(targetArb(variant), { minLength: 40, maxLength: 40 }),
        many: fc.option(fc.record({ count: fc.integer({ min: 300, max: 3000 }), nameLength: fc.integer({ min: 8, max: 200 }), parent: fc.nat() }), { freq: 5 }),
      })
      .map(({ raw, metas, contents, targets, many }) => {
        const dirs = [''];
        const files: string[] = [];
        const taken = new Set<string>();
        const entries: Entry[] = [];
        raw.forEach((r, i) => {
          const parent = dirs[r.parent % dirs.length];
          const path = parent ? `${parent}/${r.name}` : r.name;
          if (taken.has(path)) return;
          if (r.kind === 'hardlink' && files.length === 0) return;
          taken.add(path);
          if (r.kind === 'dir') {
            dirs.push(path);
            entries.push({ kind: 'dir', path, meta: metas[i] });
          } else if (r.kind === 'file') {
            files.push(path);
            entries.push({ kind: 'file', path, ...contents[i], meta: metas[i] });
          } else if (r.kind === 'symlink') {
            entries.push({ kind: 'symlink', path, target: targets[i], meta: { ...metas[i], mode: 0o777, xattrs: [] } });
          } else {
            entries.push({ kind: 'hardlink', path, to: files[r.pick % files.length] });
          }
        });
        if (many) {
          const parent = dirs[many.parent % dirs.length];
          const path = parent ? `${parent}/many-entries` : 'many-entries';
          if (!taken.has(path)) entries.push({ kind: 'many', path, count: many.count, nameLength: many.nameLength });
        }
        return { variant, entries };
      }),
  );
}

/** Names of the entries of a "many" directory (distinct, `nameLength` bytes and more). */
export function manyNames(e: Extract<Entry, { kind: 'many' }>): string[] {
  return Array.from({ length: e.count }, (_, i) => `${i}-`.padEnd(e.nameLength, 'n'));
}

/** How many entries the case puts under the root (the root not counted). */
export function entryCount(c: TreeCase): number {
  return c.entries.reduce((n, e) => n + (e.kind === 'many' ? 1 + e.count : 1), 0);
}

// ---- writing it through the kernel --------------------------------------

/** Write the tree under `root` (a read-write mount): make everything, then xattrs, owners, modes, and times last. */
export async function writeTree(root: string, c: TreeCase): Promise<void> {
  for (const e of c.entries) {
    const abs = join(root, e.path);
    switch (e.kind) {
      case 'dir':
        await mkdir(abs);
        break;
      case 'file': {
        const fh = await open(abs, 'wx');
        try {
          for (const s of e.segments) await fh.write(guestLikeData(s.length, s.seed), 0, s.length, s.offset);
          await fh.truncate(e.size);
        } finally {
          await fh.close();
        }
        break;
      }
      case 'symlink':
        await symlink(e.target, abs);
        break;
      case 'hardlink':
        await link(join(root, e.to), abs);
        break;
      case 'many':
        await mkdir(abs);
        for (const n of manyNames(e)) await writeFile(join(abs, n), '');
        break;
    }
  }
  const withMeta = c.entries.filter((e): e is Extract<Entry, { meta: Meta }> => 'meta' in e);
  // setfattr --restore takes getfattr's dump: one process for every attribute.
  const dump = withMeta
    .filter((e) => e.meta.xattrs.length)
    .map((e) => [`# file: ${join(root, e.path)}`, ...e.meta.xattrs.map((x) => `${x.name}=${x.value ? `0x${x.value}` : '""'}`), ''].join('\n'));
  if (dump.length) await sh('setfattr', ['-h', '--restore=-'], { input: dump.join('\n') + '\n' });
  for (const e of withMeta) {
    const abs = join(root, e.path);
    await lchown(abs, e.meta.uid, e.meta.gid);
    if (e.kind !== 'symlink') await chmod(abs, e.meta.mode);
  }
  // Times last, deepest first: nothing written afterwards moves them.
  const timed = withMeta.filter((e) => e.meta.time).sort((a, b) => b.path.split('/').length - a.path.split('/').length);
  for (const e of timed) {
    const t = e.meta.time!;
    await sh('touch', ['-h', '-d', `@${t.sec}.${String(t.nsec).padStart(9, '0')}`, join(root, e.path)]);
  }
}
