/**
 * Issue 18, trees against the kernel (fast-check): a random tree
 * (treeModel.ts) written through a read-write loop mount of ext4 (4 KiB and
 * 1 KiB blocks, inline_data, with and without metadata_csum, 128-byte
 * inodes), XFS v5 (4 KiB blocks; 1 KiB blocks with 8 KiB directory blocks)
 * or btrfs (plain, compress=zstd, zlib, lzo), unmounted, then read by our
 * driver and by a fresh read-only mount: names, types, sizes, modes,
 * uid/gid, link counts, st_blocks, atime/mtime/ctime (and birth time where
 * kept) to the nanosecond, symlink targets, content hashes and xattrs must
 * be the same.
 *
 * In the suite: a fixed seed and few runs; soaks: `pnpm test:properties`.
 * Without loop mounts (not root, no loop devices) the tests skip, saying why.
 */
import assert from 'node:assert/strict';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { RawFileSource } from '@guestlens/qcow2-js';
import { openFilesystem } from '../../packages/inspect/src/filesystems/registry.ts';
import { driverPaths, driverXattrs, kernelXattrs } from '../../packages/inspect/test/filesystems/xfs/xfsOracle.ts';
import { loopMountUnavailable, mountImage, walkDriver, walkMounted, withKernelMount, type TreeNode, type WalkOptions } from '../support/kernel.ts';
import { guardSparseImage } from '../../packages/inspect/test/filesystems/xfs/xfsFixtures.ts';
import { propertyParameters } from '../support/properties.ts';
import { sh } from '../support/run.ts';
import { scratchDir } from '../support/scratch.ts';
import { entryCount, FS_VARIANTS, treeCaseArb, writeTree, type TreeCase } from './treeModel.ts';

/** One side's view of a tree: every node, and the xattrs of each path that has some (name → hex value). */
interface TreeView {
  nodes: TreeNode[];
  xattrs: Record<string, Record<string, string>>;
}

function xattrRecord(m: Map<string, Map<string, string>>): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const path of [...m.keys()].sort()) {
    const attrs = m.get(path)!;
    if (attrs.size) out[path] = Object.fromEntries([...attrs.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
  }
  return out;
}

/** The property's comparison: the same paths, each node equal field by field, the same xattrs. */
export function assertSameTree(ours: TreeView, kernel: TreeView, label: string): void {
  const mine = new Map(ours.nodes.map((n) => [n.path, n]));
  const theirs = new Map(kernel.nodes.map((n) => [n.path, n]));
  const missing = [...theirs.keys()].filter((p) => !mine.has(p));
  const extra = [...mine.keys()].filter((p) => !theirs.has(p));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `${label}: paths the kernel shows that we do not (missing), and ours alone (extra)`);
  for (const [path, k] of theirs) assert.deepEqual(mine.get(path), k, `${label}: ${JSON.stringify(path)} differs from the kernel's`);
  assert.deepEqual(ours.xattrs, kernel.xattrs, `${label}: xattrs differ from the kernel's`);
}

function walkOptions(c: TreeCase): WalkOptions {
  return { times: true, birthTime: c.variant.birthTime };
}

/** Make the filesystem, write the case through a read-write mount, unmount. */
async function buildCase(c: TreeCase): Promise<string> {
  const image = join(scratchDir('prop-tree'), 'fs.img');
  await writeFile(image, '');
  await truncate(image, c.variant.sizeMiB * 1024 * 1024);
  const [mkfs, ...args] = c.variant.mkfs;
  // mkfs.xfs refuses filesystems under 300 MiB unless it believes it runs under fstests.
  await sh(mkfs, [...args, image], c.variant.type === 'xfs' ? { env: { TEST_DIR: '1', TEST_DEV: '1', QA_CHECK_FS: '1' } } : {});
  const m = await mountImage(image, { readWrite: true, options: c.variant.mountOptions });
  try {
    await writeTree(m.dir, c);
  } finally {
    await m.unmount();
  }
  return image;
}

async function driverView(image: string, c: TreeCase): Promise<TreeView> {
  const src = await RawFileSource.open(image);
  try {
    const fs = await openFilesystem(c.variant.type, src, image, { live: false });
    const nodes = await walkDriver(fs, walkOptions(c));
    return { nodes, xattrs: xattrRecord(await driverXattrs(fs, await driverPaths(fs))) };
  } finally {
    await src.close();
  }
}

async function kernelView(image: string, c: TreeCase): Promise<TreeView> {
  return withKernelMount(image, {}, async (m) => ({ nodes: await walkMounted(m.dir, walkOptions(c)), xattrs: xattrRecord(await kernelXattrs(m.dir)) }));
}

function describeCase(c: TreeCase): string {
  const kinds = c.entries.map((e) => e.kind);
  return `${c.variant.name}: ${kinds.length} entries (${['dir', 'file', 'symlink', 'hardlink', 'many'].map((k) => `${kinds.filter((x) => x === k).length} ${k}`).join(', ')})`;
}

/** The property: our view of the written image equals a fresh read-only mount's. */
async function treeAgreesWithKernel(c: TreeCase): Promise<void> {
  const image = await buildCase(c);
  const label = describeCase(c);
  await guardSparseImage(image, async () => {
    const kernel = await kernelView(image, c);
    // The kernel shows at least what was written (root and lost+found aside): a writer that wrote nothing would make the property vacuous.
    assert.ok(kernel.nodes.length - 1 >= entryCount(c), `${label}: the kernel shows ${kernel.nodes.length} nodes, fewer than were written`);
    assertSameTree(await driverView(image, c), kernel, label);
  });
}

describe('property (fast-check): random trees written by the kernel read as the kernel reads them', function () {
  this.timeout(1_800_000);
  before(async function () {
    const why = await loopMountUnavailable();
    if (why) {
      console.log(`      loop mounts impossible here (${why}): the tree properties need the kernel to write and read the trees; skipped`);
      this.skip();
    }
  });

  for (const type of ['ext4', 'xfs', 'btrfs'] as const) {
    const variants = FS_VARIANTS.filter((v) => v.type === type);
    it(`${type} (${variants.map((v) => v.name).join('; ')})`, async () => {
      await fc.assert(fc.asyncProperty(treeCaseArb(variants), treeAgreesWithKernel), propertyParameters(`${type} trees`, 3));
    });
  }

  it('the comparison fails on a planted difference in each compared field', async () => {
    const [c] = fc.sample(treeCaseArb(FS_VARIANTS.filter((v) => v.name === 'ext4 4 KiB blocks, metadata_csum')), { seed: 7, numRuns: 1 });
    const image = await buildCase(c);
    const kernel = await kernelView(image, c);
    const ours = await driverView(image, c);
    assertSameTree(ours, kernel, 'unaltered');
    const file = kernel.nodes.findIndex((n) => n.type === 'file' && n.sha256);
    assert.ok(file >= 0, 'the sample has no file');
    const plants: Array<[string, (v: TreeView) => void]> = [
      ['mtime, 1 ns later', (v) => (v.nodes[file].mtimeNs = String(BigInt(v.nodes[file].mtimeNs!) + 1n))],
      ['content hash', (v) => (v.nodes[file].sha256 = '0'.repeat(64))],
      ['link count', (v) => v.nodes[file].nlink++],
      ['mode', (v) => (v.nodes[file].mode ^= 0o1000)],
      ['a name', (v) => (v.nodes[file].path += 'x')],
      ['an xattr', (v) => (v.xattrs['/'] = { 'user.planted': '00' })],
    ];
    for (const [what, plant] of plants) {
      const altered: TreeView = structuredClone(kernel);
      plant(altered);
      assert.throws(() => assertSameTree(ours, altered, 'planted'), assert.AssertionError, `a planted difference in ${what} went unnoticed`);
    }
  });
});
