/**
 * ext's optional capabilities against the kernel: extended attributes
 * (in-inode, external block, ea_inode values, POSIX ACLs in getxattr's form)
 * equal getfattr's on a read-only mount; extents equal FIEMAP (filefrag -v);
 * inode enumeration finds every inode the mounted tree shows and, with
 * `deleted`, the inodes of removed files with their deletion time.
 */
import assert from 'node:assert/strict';
import { mkdirSync, statSync, writeFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { openExt, type Filesystem } from '../../../src/index.ts';
import { RawFileSource } from '@guestlens/qcow2-js';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { sh } from '../../../../../test/support/run.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { loopMountUnavailable, withKernelMount } from '../../../../../test/support/kernel.ts';

const MiB = 1024 * 1024;

describe('ext driver: extended attributes, extents and inodes equal the kernel\'s', function () {
  this.timeout(180_000);
  let image: string;
  const deleted: { ino: number; time: number }[] = [];

  before(async function () {
    const why = await loopMountUnavailable();
    if (why) {
      console.log(`      cannot run: ${why}`);
      this.skip();
    }
    const dir = scratchDir('ext-caps');
    image = join(dir, 'caps.img');
    await sh('truncate', ['-s', '64M', image]);
    await sh('mkfs.ext4', ['-q', '-F', '-b', '4096', '-I', '256', '-O', 'ea_inode,inline_data', image]);
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    await withKernelMount(image, { readWrite: true }, async (m) => {
      const f = (name: string) => join(m.dir, name);
      writeFileSync(f('small'), 'hi\n');
      await sh('setfattr', ['-n', 'user.in-inode', '-v', 'short', f('small')]);
      writeFileSync(f('block'), 'x'.repeat(10000));
      for (let i = 0; i < 6; i++) await sh('setfattr', ['-n', `user.attr${i}`, '-v', 'v'.repeat(300), f('block')]);
      await sh('setfattr', ['-n', 'trusted.t', '-v', '0x00ff10', f('block')]);
      await sh('setfattr', ['-n', 'security.s', '-v', 'label', f('block')]);
      writeFileSync(f('huge-value'), 'y');
      await sh('setfattr', ['-n', 'user.big', '-v', `0x${Buffer.alloc(20000, 0xab).toString('hex')}`, f('huge-value')]);
      writeFileSync(f('acl'), 'z');
      await sh('setfacl', ['-m', 'u:1234:rw,g:55:r', f('acl')]);
      mkdirSync(f('dir'));
      await sh('setfacl', ['-d', '-m', 'u:99:rwx', f('dir')]);
      await sh('fallocate', ['-l', '1M', f('prealloc')]);
      await sh('truncate', ['-s', '10M', f('sparse')]);
      await sh('dd', ['if=/dev/urandom', `of=${f('sparse')}`, 'bs=4096', 'seek=1000', 'count=3', 'conv=notrunc', 'status=none']);
      await sh('dd', ['if=/dev/urandom', `of=${f('sparse')}`, 'bs=4096', 'seek=2000', 'count=1', 'conv=notrunc', 'status=none']);
      // Interleaved appends fragment both files.
      for (let i = 0; i < 20; i++) {
        for (const n of ['frag-a', 'frag-b']) await sh('dd', ['if=/dev/urandom', `of=${f(n)}`, 'bs=64k', 'count=1', 'oflag=append', 'conv=notrunc,fsync', 'status=none']);
      }
      for (let i = 0; i < 4; i++) writeFileSync(f(`gone${i}`), 'soon deleted\n'.repeat(1000));
      await sh('sync', []);
      for (let i = 0; i < 4; i++) {
        const ino = statSync(f(`gone${i}`)).ino;
        unlinkSync(f(`gone${i}`));
        deleted.push({ ino, time: Math.floor(Date.now() / 1000) });
      }
    });
  });

  async function withDriver<T>(fn: (fs: Filesystem) => Promise<T>): Promise<T> {
    return guardImages([image], async () => {
      const source = await RawFileSource.open(image);
      try {
        return await fn(await openExt(source));
      } finally {
        await source.close();
      }
    });
  }

  /** getfattr -d -m - -e hex of each path, as name → hex value. */
  async function kernelXattrs(dir: string, names: string[]): Promise<Map<string, Record<string, string>>> {
    const out = new Map<string, Record<string, string>>();
    for (const n of names) {
      const r = await execa('getfattr', ['--absolute-names', '-d', '-m', '-', '-e', 'hex', join(dir, n)], { reject: false });
      const attrs: Record<string, string> = {};
      for (const line of r.stdout.split('\n')) {
        const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line);
        if (m) attrs[m[1]] = m[2];
      }
      out.set(n, attrs);
    }
    return out;
  }

  it('lists and reads every extended attribute exactly as getfattr does (in-inode, block, ea_inode, ACLs)', async () => {
    const names = ['small', 'block', 'huge-value', 'acl', 'dir', 'prealloc'];
    const kernel = await withKernelMount(image, {}, (m) => kernelXattrs(m.dir, names));
    const ours = await withDriver(async (fs) => {
      const out = new Map<string, Record<string, string>>();
      for (const n of names) {
        const ino = (await fs.lookup(fs.rootIno, n))!;
        const attrs: Record<string, string> = {};
        for (const x of (await fs.listxattr!(ino)).sort()) attrs[x] = (await fs.getxattr!(ino, x)).toString('hex');
        out.set(n, attrs);
      }
      return out;
    });
    for (const n of names) assert.deepEqual(sortKeys(ours.get(n)!), sortKeys(kernel.get(n)!), n);
    assert.ok(Object.keys(kernel.get('acl')!).includes('system.posix_acl_access'));
    assert.equal(kernel.get('huge-value')!['user.big'].length, 40000);
    await withDriver(async (fs) => {
      const ino = (await fs.lookup(fs.rootIno, 'small'))!;
      await assert.rejects(fs.getxattr!(ino, 'user.nothing'), (e: unknown) => (e as { code?: string }).code === 'ENODATA');
    });
  });

  it('maps files to extents exactly as FIEMAP does (data, holes between, unwritten)', async () => {
    const names = ['prealloc', 'sparse', 'frag-a', 'frag-b', 'block'];
    const kernel = await withKernelMount(image, {}, async (m) => {
      const out = new Map<string, { offset: number; length: number; physical: number; unwritten: boolean }[]>();
      for (const n of names) out.set(n, await fiemap(join(m.dir, n)));
      return out;
    });
    await withDriver(async (fs) => {
      for (const n of names) {
        const ino = (await fs.lookup(fs.rootIno, n))!;
        const ours = (await fs.extents!(ino)).filter((e) => e.kind !== 'hole');
        const theirs = kernel.get(n)!;
        assert.deepEqual(
          ours.map((e) => ({ offset: e.offset, length: e.length, physical: e.physical, unwritten: e.kind === 'unwritten' })),
          mergeContiguous(theirs),
          n,
        );
      }
      const sparse = (await fs.lookup(fs.rootIno, 'sparse'))!;
      const all = await fs.extents!(sparse);
      assert.equal(all[0].kind, 'hole');
      assert.equal(all.reduce((n, e) => n + e.length, 0), 10 * MiB, 'extents cover the file without gaps');
      const small = (await fs.lookup(fs.rootIno, 'small'))!;
      assert.deepEqual(await fs.extents!(small), [{ offset: 0, length: 3, kind: 'inline' }]);
    });
  });

  it('enumerates the inodes in use (those the tree shows) and, asked, the deleted ones with their deletion time', async () => {
    const shown = await withKernelMount(image, {}, async (m) => {
      const { stdout } = await execa('find', [m.dir, '-printf', '%i\n']);
      return new Set(stdout.trim().split('\n').map(Number));
    });
    await withDriver(async (fs) => {
      const inUse: number[] = [];
      for await (const e of fs.inodes!()) {
        assert.equal(e.deleted, false);
        inUse.push(e.ino);
      }
      // Inodes in use but not in the tree: ea_inode value holders.
      assert.deepEqual([...shown].filter((i) => !inUse.includes(i)), []);
      const extra = inUse.filter((i) => !shown.has(i));
      assert.ok(extra.length <= 2, `in use but nameless: ${extra.join(', ')}`);
      const gone = new Map<number, number>();
      for await (const e of fs.inodes!({ deleted: true })) if (e.deleted) gone.set(e.ino, e.stat.dtime!.sec);
      for (const d of deleted) {
        assert.ok(gone.has(d.ino), `deleted inode ${d.ino} is listed`);
        assert.ok(Math.abs(gone.get(d.ino)! - d.time) < 120, `its deletion time ${gone.get(d.ino)} is about ${d.time}`);
      }
    });
  });
});

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** FIEMAP through filefrag -v (byte units from its block size). */
async function fiemap(path: string): Promise<{ offset: number; length: number; physical: number; unwritten: boolean }[]> {
  const { stdout } = await execa('filefrag', ['-v', '-b4096', path]);
  const out: { offset: number; length: number; physical: number; unwritten: boolean }[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+(\d+)\.\.\s*(\d+):\s+(\d+):\s*(?:\d+:)?\s*(.*)$/.exec(line);
    if (!m) continue;
    out.push({ offset: Number(m[1]) * 4096, length: Number(m[5]) * 4096, physical: Number(m[3]) * 4096, unwritten: /unwritten/.test(m[6]) });
  }
  return out;
}

/** FIEMAP splits extents at the ext4 extent-length limit; join what continues. Our last extent ends at i_size, FIEMAP's at the block end. */
function mergeContiguous(list: { offset: number; length: number; physical: number; unwritten: boolean }[]) {
  const out: typeof list = [];
  for (const e of list) {
    const p = out[out.length - 1];
    if (p && p.offset + p.length === e.offset && p.physical + p.length === e.physical && p.unwritten === e.unwritten) p.length += e.length;
    else out.push({ ...e });
  }
  return out;
}
