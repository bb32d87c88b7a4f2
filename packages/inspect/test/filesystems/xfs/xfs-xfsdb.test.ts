/**
 * Filesystems this kernel does not mount, against XFS's own debugger: the
 * version 4 formats (-m crc=0, with and without ftype, 512-byte blocks) and
 * a case-insensitive (ascii-ci) v5 one, all filled by mkfs.xfs from a
 * prototype file. The tree we read must be the one the prototype described
 * (names, types, modes, owners, sizes, contents, link targets, device
 * numbers); every inode's core (mode, links, owner, size, blocks, times to
 * the nanosecond), every directory listing and the extent maps must be what
 * `xfs_db -r` prints; statfs follows from the superblock xfs_db prints.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { RawFileSource } from '@guestlens/qcow2-js';
import { XfsFilesystem } from '../../../src/filesystems/xfs/index.ts';
import { directoryForm } from '../../../src/filesystems/xfs/directory.ts';
import { readInode } from '../../../src/filesystems/xfs/inode.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { sh } from '../../../../../test/support/run.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { walkDriver, walkMounted, type TreeNode } from '../../../../../test/support/kernel.ts';
import { SMALL_FS_ENV, makeSourceTree, protofileOf } from './xfsFixtures.ts';
import { driverPaths, mergeExtents, parseFields, parseXfsDbLs, xfsDb } from './xfsOracle.ts';
import type { FileExtent } from '../../../src/filesystems/filesystem.ts';

interface DbVariant {
  name: string;
  mkfsArgs: string[];
  version: 4 | 5;
  ftype: boolean;
  ci?: boolean;
}

const VARIANTS: DbVariant[] = [
  { name: 'v4 (-m crc=0): v2 inodes, ftype', mkfsArgs: ['-m', 'crc=0'], version: 4, ftype: true },
  { name: 'v4 without ftype (-n ftype=0)', mkfsArgs: ['-m', 'crc=0', '-n', 'ftype=0'], version: 4, ftype: false },
  { name: 'v4 with 512-byte blocks and 256-byte inodes, no ftype', mkfsArgs: ['-m', 'crc=0', '-n', 'ftype=0', '-b', 'size=512'], version: 4, ftype: false },
  { name: 'v5 with ASCII case-insensitive names (-n version=ci), which this kernel refuses', mkfsArgs: ['-n', 'version=ci'], version: 5, ftype: true, ci: true },
];

const EXTRA_DIRS = { 'dir-block': 20, 'dir-leaf': 150, 'dir-node': 2500 };

/** What the prototype carries over from the source tree. */
function comparable(n: TreeNode): Record<string, unknown> {
  return { path: n.path, type: n.type, mode: n.mode, uid: n.uid, gid: n.gid, size: n.type === 'directory' ? 0 : n.size, target: n.target, sha256: n.sha256, rdev: n.rdev };
}

/** A prototype-file image of the fixture tree. */
async function build(variant: DbVariant): Promise<{ image: string; source: string; included: Set<string> }> {
  const source = await makeSourceTree({ bigtime: variant.version === 5 });
  const { proto, included } = await protofileOf(source, EXTRA_DIRS, variant.version === 5 ? 100 : Infinity);
  const image = join(scratchDir('xfs-db-img'), 'fs.img');
  await sh('truncate', ['-s', '400M', image]);
  await sh('mkfs.xfs', ['-q', '-f', '-L', 'fixture', ...variant.mkfsArgs, '-p', proto, image], { env: SMALL_FS_ENV });
  return { image, source, included };
}

/** Seconds from xfs_db's ctime-style time ("Tue Dec  1 22:28:46 2026", printed in UTC). */
function dbSeconds(text: string): number {
  const ms = new Date(`${text} UTC`).getTime();
  assert.ok(Number.isFinite(ms), `cannot parse xfs_db time "${text}"`);
  return ms / 1000;
}

describe('xfs driver: filesystems the kernel does not mount, against xfs_db -r', function () {
  this.timeout(600_000);

  for (const variant of VARIANTS) {
    it(variant.name, async () => {
      const { image, source, included } = await build(variant);
      await guardImages([image], async () => {
        const src = await RawFileSource.open(image);
        try {
          const fs = await XfsFilesystem.open(src);
          const vol = fs.volume;
          assert.equal(vol.sb.version, variant.version);
          assert.equal(vol.sb.hasFtype, variant.ftype);
          assert.equal(vol.sb.hasAsciiCi, !!variant.ci);
          assert.equal(fs.label, 'fixture');

          // The tree is the prototype's.
          const ours = await walkDriver(fs, { devices: true });
          const extra = new Set(Object.keys(EXTRA_DIRS).map((d) => `/${d}`));
          const inExtra = (p: string) => [...extra].some((d) => p === d || p.startsWith(`${d}/`));
          const src0 = (await walkMounted(source, { devices: true })).filter((n) => included.has(n.path));
          const mine = ours.filter((n) => !inExtra(n.path) && n.path !== '/');
          const expectedTree = src0.filter((n) => n.path !== '/');
          assert.deepEqual(mine.map((n) => n.path), expectedTree.map((n) => n.path));
          assert.deepEqual(mine.map(comparable), expectedTree.map(comparable));
          for (const [d, count] of Object.entries(EXTRA_DIRS)) assert.equal(ours.filter((n) => n.path.startsWith(`/${d}/`)).length, count, d);

          // Every inode's core is what xfs_db prints.
          const paths = await driverPaths(fs);
          const byIno = new Map<number, string>();
          for (const [p, ino] of paths) if (!byIno.has(ino)) byIno.set(ino, p);
          const inos = [...byIno.keys()].filter((ino, i) => !inExtra(byIno.get(ino)!) || i % 25 === 0);
          const fields = variant.version === 5
            ? 'core.mode core.version core.nlinkv2 core.uid core.gid core.size core.nblocks core.atime.sec core.atime.nsec core.mtime.sec core.mtime.nsec core.ctime.sec core.ctime.nsec v3.crtime.sec v3.crtime.nsec'
            : 'core.mode core.version core.nlinkv2 core.uid core.gid core.size core.nblocks core.atime.sec core.atime.nsec core.mtime.sec core.mtime.nsec core.ctime.sec core.ctime.nsec';
          const cmds: string[] = [];
          for (const ino of inos) cmds.push(`echo === ${ino}`, `inode ${ino}`, `print ${fields}`);
          const printed = (await xfsDb(image, cmds)).split(/^=== /m).slice(1);
          assert.equal(printed.length, inos.length);
          for (const chunk of printed) {
            const ino = Number(chunk.slice(0, chunk.indexOf('\n')));
            const f = parseFields(chunk);
            const st = await fs.getattr(ino);
            const where = `inode ${ino} (${byIno.get(ino)})`;
            assert.equal(st.mode, parseInt(f.get('core.mode')!, 8), `${where} mode`);
            assert.equal(st.nlink, Number(f.get('core.nlinkv2')), `${where} nlink`);
            assert.equal(st.uid, Number(f.get('core.uid')), `${where} uid`);
            assert.equal(st.gid, Number(f.get('core.gid')), `${where} gid`);
            const special = ['chardev', 'blockdev', 'fifo', 'socket'].includes(st.type);
            assert.equal(st.size, special ? 0 : Number(f.get('core.size')), `${where} size`);
            assert.equal(st.blocks, Number(f.get('core.nblocks')) * vol.bbPerBlock, `${where} blocks`);
            for (const t of ['atime', 'mtime', 'ctime'] as const) {
              assert.equal(st[t].sec, dbSeconds(f.get(`core.${t}.sec`)!), `${where} ${t}`);
              assert.equal(st[t].nsec, Number(f.get(`core.${t}.nsec`)), `${where} ${t} nanoseconds`);
            }
            if (variant.version === 5) {
              assert.equal(st.crtime!.sec, dbSeconds(f.get('v3.crtime.sec')!), `${where} crtime`);
              assert.equal(st.crtime!.nsec, Number(f.get('v3.crtime.nsec')), `${where} crtime nanoseconds`);
            } else {
              assert.equal(st.crtime, undefined);
            }
          }

          // Every directory lists what xfs_db's ls lists, "." and ".." included.
          const dirs = [...paths].filter(([, ino]) => byIno.has(ino)).map(([p]) => p).filter((p) => !/\s/.test(p));
          const dirCmds: string[] = [];
          const dirList: string[] = [];
          for (const p of dirs) {
            if ((await fs.getattr(paths.get(p)!)).type !== 'directory') continue;
            dirList.push(p);
            dirCmds.push(`echo === ${p}`, `path ${p}`, 'ls');
          }
          const listings = (await xfsDb(image, dirCmds)).split(/^=== /m).slice(1);
          assert.equal(listings.length, dirList.length);
          const forms = new Set<string>();
          for (const chunk of listings) {
            const p = chunk.slice(0, chunk.indexOf('\n')).trim();
            const dirIno = paths.get(p)!;
            const expected = parseXfsDbLs(chunk);
            const got = new Map<string, number>((await fs.readdir(dirIno)).map((e) => [e.name, e.ino]));
            got.set('.', (await fs.lookup(dirIno, '.'))!);
            got.set('..', (await fs.lookup(dirIno, '..'))!);
            assert.deepEqual(new Map([...got].sort()), new Map([...expected].sort()), `directory ${p}`);
            for (const e of await fs.readdir(dirIno)) assert.equal(e.type === 'unknown', !variant.ftype, `ftype of ${p}/${e.name}`);
            forms.add(await directoryForm(vol, await readInode(vol, dirIno)));
          }
          assert.deepEqual([...forms].sort(), ['block', 'leaf', 'node', 'shortform']);

          // A fresh driver (no directory listed yet) finds names through the hash index; ascii-ci folds case.
          const fresh = await XfsFilesystem.open(src);
          const node = paths.get('/dir-node')!;
          assert.equal(await fresh.lookup(node, '0001234-entry-with-a-longish-name'), paths.get('/dir-node/0001234-entry-with-a-longish-name'));
          assert.equal(await fresh.lookup(node, '0001234-ENTRY-with-a-longish-name'), variant.ci ? paths.get('/dir-node/0001234-entry-with-a-longish-name') : undefined);
          assert.equal(await fresh.lookup(paths.get('/files')!, 'F100'), variant.ci ? paths.get('/files/f100') : undefined);

          // Extent maps are xfs_db's bmap.
          const sb = parseFields(await xfsDb(image, ['sb 0', 'print']));
          const agblocks = Number(sb.get('agblocks'));
          for (const p of ['/files/f1500000', '/files/f65537', '/files/f4097']) {
            const ino = paths.get(p)!;
            const bmap = await xfsDb(image, [`inode ${ino}`, 'bmap']);
            const expected: FileExtent[] = [];
            const size = (await fs.getattr(ino)).size;
            for (const m of bmap.matchAll(/data offset (\d+) startblock \d+ \((\d+)\/(\d+)\) count (\d+) flag (\d)/g)) {
              const offset = Number(m[1]) * vol.blockSize;
              const length = Math.min(Number(m[4]) * vol.blockSize, size - offset);
              expected.push({ offset, length, kind: m[5] === '1' ? 'unwritten' : 'data', physical: (Number(m[2]) * agblocks + Number(m[3])) * vol.blockSize });
            }
            assert.deepEqual(mergeExtents(await fs.extents!(ino)), mergeExtents(expected), `extents of ${p}`);
          }

          // statfs is the kernel's formula over the superblock's counters (mkfs left the log clean).
          const st = await fs.statfs();
          assert.equal(st.exact, true, st.reason);
          const n = (k: string) => BigInt(sb.get(k)!);
          const bfree = n('fdblocks') - 8n * n('agcount');
          const inopblog = n('inopblog');
          const files = [n('icount') + (bfree << inopblog)].map((f) => {
            const ialloc = BigInt(Math.max(64, Number(n('inopblock')))) >> inopblog;
            const max = ((n('dblocks') * n('imax_pct')) / 100n / ialloc * ialloc) << inopblog;
            return f > max ? max : f;
          })[0];
          assert.deepEqual(
            { bsize: st.bsize, blocks: st.blocks, bfree: st.bfree, bavail: st.bavail, files: st.files, ffree: st.ffree },
            { bsize: Number(n('blocksize')), blocks: Number(n('dblocks') - n('logblocks')), bfree: Number(bfree), bavail: Number(bfree), files: Number(files), ffree: Number(files - (n('icount') - n('ifree'))) },
          );
        } finally {
          await src.close();
        }
      });
    });
  }
});
