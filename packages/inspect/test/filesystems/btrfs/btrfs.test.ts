/**
 * The btrfs driver against the running kernel: for each mkfs variant, our
 * statfs equals `stat -f` of a read-only loop mount, and the complete tree of
 * the default subvolume and of each subvolume (mounted with subvol= and
 * subvolid=) equals the kernel's: names in readdir order, types, modes,
 * sizes, owners, link counts, st_blocks, device numbers, atime/mtime/ctime
 * to the nanosecond, symlink targets, content hashes; xattrs and the
 * subvolume list too.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, open, readlink } from 'node:fs/promises';
import { execa } from 'execa';
import { decodeName } from '../../../src/filesystems/names.ts';
import { join } from 'node:path';
import { RawFileSource } from '@guestlens/qcow2-js';
import { openBtrfs, type BtrfsFilesystem } from '../../../src/filesystems/btrfs/index.ts';
import type { Filesystem } from '../../../src/filesystems/filesystem.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { sh } from '../../../../../test/support/run.ts';
import { kernelStatfs, loopMountUnavailable, unmountAll, withKernelMount } from '../../../../../test/support/kernel.ts';
import { BIG_DIR, BIG_DIR_ENTRIES, VARIANTS, buildImage } from './fixtures.ts';

interface Node {
  path: string;
  mode: number;
  size: number;
  uid: number;
  gid: number;
  nlink: number;
  blocks: number;
  rdev?: string;
  atime: string;
  mtime: string;
  ctime: string;
  target?: string;
  sha256?: string;
  /** Entry names in readdir order (directories). */
  names?: string[];
}

const ns = (sec: number | bigint, nsec: number | bigint) => `${sec}.${String(nsec).padStart(9, '0')}`;

async function walkKernel(root: string): Promise<Node[]> {
  const out: Node[] = [];
  const visit = async (rel: string) => {
    const abs = rel === '/' ? root : join(root, rel);
    const st = await lstat(abs, { bigint: true });
    const mode = Number(st.mode);
    const node: Node = {
      path: rel, mode, size: Number(st.size), uid: Number(st.uid), gid: Number(st.gid), nlink: Number(st.nlink), blocks: Number(st.blocks),
      atime: ns(st.atimeNs / 1_000_000_000n, st.atimeNs % 1_000_000_000n),
      mtime: ns(st.mtimeNs / 1_000_000_000n, st.mtimeNs % 1_000_000_000n),
      ctime: ns(st.ctimeNs / 1_000_000_000n, st.ctimeNs % 1_000_000_000n),
    };
    // A pre-epoch time: bigint division truncates towards zero; normalise like the driver (floor seconds, positive nanoseconds).
    for (const k of ['atime', 'mtime', 'ctime'] as const) {
      const v = k === 'atime' ? st.atimeNs : k === 'mtime' ? st.mtimeNs : st.ctimeNs;
      if (v < 0n) {
        const sec = (v - 999_999_999n) / 1_000_000_000n;
        node[k] = ns(sec, v - sec * 1_000_000_000n);
      }
    }
    const fmt = mode & 0o170000;
    if (fmt === 0o020000 || fmt === 0o060000) node.rdev = `${Number(st.rdev) >> 8 & 0xfff}:${(Number(st.rdev) & 0xff) | ((Number(st.rdev) >> 12) & 0xfff00)}`;
    if (fmt === 0o120000) node.target = await readlink(abs);
    if (fmt === 0o100000) {
      const h = createHash('sha256');
      const fh = await open(abs, 'r');
      try {
        for await (const chunk of fh.createReadStream()) h.update(chunk as Buffer);
      } finally {
        await fh.close().catch(() => undefined);
      }
      node.sha256 = h.digest('hex');
    }
    out.push(node);
    if (fmt === 0o040000) {
      const names = await kernelReaddir(abs);
      node.names = names;
      for (const name of names) await visit(rel === '/' ? `/${name}` : `${rel}/${name}`);
    }
  };
  await visit('/');
  return out;
}

/** Entry names in the kernel's readdir order (Node's readdir sorts them): find reads getdents unsorted. */
async function kernelReaddir(dir: string): Promise<string[]> {
  const r = await execa('find', [dir, '-mindepth', '1', '-maxdepth', '1', '-printf', '%f\\0'], { encoding: 'buffer' });
  const out = Buffer.from(r.stdout);
  const names: string[] = [];
  for (let p = 0; p < out.length; ) {
    const end = out.indexOf(0, p);
    names.push(decodeName(out.subarray(p, end)));
    p = end + 1;
  }
  return names;
}

async function walkOurs(fs: Filesystem): Promise<Node[]> {
  const out: Node[] = [];
  const visit = async (rel: string, ino: number) => {
    const st = await fs.getattr(ino);
    const node: Node = {
      path: rel, mode: st.mode, size: st.size, uid: st.uid, gid: st.gid, nlink: st.nlink, blocks: st.blocks,
      atime: ns(st.atime.sec, st.atime.nsec), mtime: ns(st.mtime.sec, st.mtime.nsec), ctime: ns(st.ctime.sec, st.ctime.nsec),
    };
    if (st.rdev) node.rdev = `${st.rdev.major}:${st.rdev.minor}`;
    if (st.type === 'symlink') node.target = await fs.readlink(ino);
    if (st.type === 'file') {
      const h = createHash('sha256');
      for (let off = 0; off < st.size; off += 4 << 20) h.update(await fs.read(ino, off, Math.min(4 << 20, st.size - off)));
      node.sha256 = h.digest('hex');
    }
    out.push(node);
    if (st.type === 'directory') {
      const entries = await fs.readdir(ino);
      node.names = entries.map((e) => e.name);
      for (const e of entries) {
        assert.equal(await fs.lookup(ino, e.name), e.ino, `lookup of ${rel}/${e.name}`);
        await visit(rel === '/' ? `/${e.name}` : `${rel}/${e.name}`, e.ino);
      }
    }
  };
  await visit('/', fs.rootIno);
  return out;
}

function assertSameTree(ours: Node[], kernel: Node[]): void {
  assert.equal(ours.length, kernel.length, 'number of entries');
  const byPath = new Map(kernel.map((n) => [n.path, n]));
  for (const n of ours) assert.deepEqual(n, byPath.get(n.path), n.path);
}

async function kernelSubvolumes(dir: string): Promise<{ id: number; path: string }[]> {
  const out = await sh('btrfs', ['subvolume', 'list', dir]);
  return out.trim().split('\n').filter(Boolean).map((line) => {
    const m = /^ID (\d+) gen \d+ top level (\d+) path (.*)$/.exec(line);
    assert.ok(m, line);
    return { id: Number(m[1]), path: m[3] };
  });
}

async function xattrsOf(path: string): Promise<Map<string, string>> {
  const out = await sh('getfattr', ['--absolute-names', '-h', '-d', '-m', '-', '-e', 'hex', path]).catch(() => '');
  const map = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line);
    if (m) map.set(m[1], m[2]);
  }
  return map;
}

describe('btrfs driver: statfs and trees equal the kernel\'s', function () {
  this.timeout(600_000);
  let noLoop: string | undefined;
  before(async function () {
    noLoop = await loopMountUnavailable();
  });
  afterEach(unmountAll);

  for (const variant of VARIANTS) {
    it(variant.name, async function () {
      if (noLoop) {
        console.log(`      loop mounts impossible here (${noLoop}): the kernel cannot be the oracle`);
        this.skip();
      }
      const image = await buildImage(variant);
      await guardImages([image], async () => {
        const source = await RawFileSource.open(image);
        try {
          const fs = await openBtrfs(source);
          const subvolumes = await fs.subvolumes();
          const roView = await openBtrfs(source, { statfs: 'read-only-mount' });
          // The guest's own view: a read-write mount (of a private copy).
          await withKernelMount(image, { fstype: 'btrfs', copy: true, readWrite: true }, async (m) => {
            assert.deepEqual({ ...(await fs.statfs()), exact: undefined }, { ...(await kernelStatfs(m.dir)), exact: undefined, files: 0, ffree: 0 });
          });
          await withKernelMount(image, { fstype: 'btrfs' }, async (m) => {
            assert.deepEqual({ ...(await roView.statfs()), exact: undefined }, { ...(await kernelStatfs(m.dir)), exact: undefined, files: 0, ffree: 0 });
            assert.deepEqual(subvolumes.map((s) => ({ id: s.id, path: s.path })), await kernelSubvolumes(m.dir));
            assertSameTree(await walkOurs(fs), await walkKernel(m.dir));
            // readdir order is the directory-index order the kernel lists.
            if (!variant.fill) return;
            const big = await fs.readdir((await fs.lookup(fs.rootIno, BIG_DIR))!);
            assert.equal(big.length, variant.bigDir ? BIG_DIR_ENTRIES : 300);
            for (const name of ['tiny', 'noise.bin']) {
              const ino = (await fs.lookup(fs.rootIno, name))!;
              const kernel = await xattrsOf(join(m.dir, name));
              const oursNames = (await fs.listxattr!(ino)).sort();
              assert.deepEqual(oursNames, [...kernel.keys()].sort(), `xattr names of ${name}`);
              for (const [k, v] of kernel) assert.equal((await fs.getxattr!(ino, k)).toString('hex'), v, `${name} ${k}`);
            }
          });
          if (!variant.fill) return;
          const snapshot = subvolumes.find((s) => s.path === 'home-snap');
          assert.ok(snapshot?.isSnapshot && snapshot.readOnly, 'home-snap is a read-only snapshot');
          assert.ok(!subvolumes.find((s) => s.path === 'home')!.isSnapshot);
          for (const sv of subvolumes) {
            const byPath = await openBtrfs(source, { subvolume: sv.path });
            const byId = await openBtrfs(source, { subvolume: sv.id });
            assert.equal(byPath.subvolumeId, sv.id);
            await withKernelMount(image, { fstype: 'btrfs', options: [`subvol=${sv.path}`] }, async (m) => {
              const kernel = await walkKernel(m.dir);
              assertSameTree(await walkOurs(byPath), kernel);
              assertSameTree(await walkOurs(byId), kernel);
              assert.deepEqual(await byPath.statfs(), await fs.statfs());
            });
          }
          await checkExtents(fs);
        } finally {
          await source.close();
        }
      });
    });
  }
});

async function checkExtents(fs: BtrfsFilesystem): Promise<void> {
  const kinds = async (name: string) => {
    const ino = (await fs.lookup(fs.rootIno, name))!;
    return new Set((await fs.extents(ino)).map((e) => e.kind));
  };
  assert.ok((await kinds('zstd.txt')).has('compressed'));
  assert.ok((await kinds('zlib.txt')).has('compressed'));
  assert.ok((await kinds('lzo.txt')).has('compressed'));
  assert.deepEqual([...(await kinds('noise.bin'))], ['data']);
  assert.deepEqual([...(await kinds('tiny'))], ['inline']);
  assert.ok((await kinds('prealloc')).has('unwritten'));
  assert.ok((await kinds('sparse')).has('hole'));
  // Extents cover the file exactly, in order.
  const ino = (await fs.lookup(fs.rootIno, 'sparse'))!;
  const map = await fs.extents(ino);
  let pos = 0;
  for (const e of map) {
    assert.equal(e.offset, pos);
    pos += e.length;
  }
  assert.equal(pos, (await fs.getattr(ino)).size);
}
