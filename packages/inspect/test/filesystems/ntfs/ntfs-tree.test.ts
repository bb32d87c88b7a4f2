/**
 * The NTFS driver against ntfs-3g, the oracle libguestfs uses: for volumes
 * made by mkntfs and filled through ntfs-3g (see ntfsFixtures.ts), the whole
 * tree (names, inode numbers, types, modes, sizes, st_blocks, link counts,
 * owners, times to the nanosecond, device numbers, link targets, content
 * hashes) must equal a walk of a read-only ntfs-3g mount, named streams must
 * equal its user.* extended attributes, statfs its `stat -f`, and the volume
 * facts what ntfsinfo -m and blkid print. The images never change.
 */
import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import { execa } from 'execa';
import { join } from 'node:path';
import { RawFileSource } from '@guestlens/qcow2-js';
import { NtfsFilesystem } from '../../../src/filesystems/ntfs/index.ts';
import { openFilesystem } from '../../../src/filesystems/registry.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { sh } from '../../../../../test/support/run.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { mkntfs, ntfs3gUnavailable, ntfsinfoVolume, statfsOf, withNtfs3g } from '../../../../../test/support/ntfs3g.ts';
import { BIG_DIR, BIG_DIR_FILES, FRAGMENTS, LINKS_MANY, buildTreeImage, type TreeImage } from './ntfsFixtures.ts';
import { walkNtfs3g, walkNtfsDriver } from './ntfsWalk.ts';

async function openImage(image: string): Promise<{ fs: NtfsFilesystem; close: () => Promise<void> }> {
  const src = await RawFileSource.open(image);
  return { fs: await NtfsFilesystem.open(src), close: () => src.close() };
}

/** getfattr prints bytes outside printable ASCII (and backslashes) as octal escapes. */
function getfattrPath(quoted: string): string {
  const raw = Buffer.from(quoted, 'utf8');
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const oct = raw.toString('latin1', i + 1, i + 4);
    if (raw[i] === 0x5c && /^[0-7]{3}$/.test(oct)) {
      bytes.push(parseInt(oct, 8));
      i += 3;
    } else bytes.push(raw[i]);
  }
  return Buffer.from(bytes).toString('utf8');
}

async function resolve(fs: NtfsFilesystem, path: string): Promise<number> {
  let ino = fs.rootIno;
  for (const part of path.split('/').filter(Boolean)) {
    const next = await fs.lookup(ino, part);
    assert.ok(next !== undefined, `${path}: no ${part}`);
    ino = next;
  }
  return ino;
}

/**
 * The user.* extended attributes on the ntfs-3g mount: names from
 * listxattr, values from getfattr -d (which cannot show values over the
 * 64 KiB the xattr interface allows; those are compared by size only).
 */
async function ntfs3gStreams(dir: string, path: string): Promise<Map<string, Buffer | undefined>> {
  const names = (await sh('getfattr', ['--absolute-names', '-m', '^user\\.', join(dir, path)])).split('\n').filter((l) => l.startsWith('user.'));
  const m = new Map<string, Buffer | undefined>(names.map((n) => [n.trim(), undefined]));
  const r = await execa('getfattr', ['--absolute-names', '-d', '-m', '^user\\.', '-e', 'hex', join(dir, path)], { reject: false });
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('user.')) continue;
    const i = line.indexOf('=');
    if (i < 0) m.set(line.trim(), Buffer.alloc(0));
    else m.set(line.slice(0, i), Buffer.from(line.slice(i + 3), 'hex'));
  }
  return m;
}

const VARIANTS: { name: string; clusterSize?: number; sizeMiB?: number }[] = [
  { name: '4 KiB clusters (mkntfs default)' },
  { name: '512-byte clusters (MFT records span two clusters, index VCNs count 512-byte units)', clusterSize: 512 },
  { name: '64 KiB clusters (several MFT records per cluster, no compression)', clusterSize: 65536, sizeMiB: 256 },
];

describe('ntfs driver: file tree, streams, statfs equal ntfs-3g\'s', function () {
  this.timeout(600_000);
  let why: string | undefined;
  before(async () => {
    why = await ntfs3gUnavailable();
    if (why) console.log(`      ntfs-3g cannot be used here (${why}): skipping`);
  });

  for (const variant of VARIANTS) {
    it(variant.name, async function () {
      if (why) this.skip();
      const fixture = await buildTreeImage({ clusterSize: variant.clusterSize, sizeMiB: variant.sizeMiB });
      await guardImages([fixture.image], async () => {
        const { fs, close } = await openImage(fixture.image);
        try {
          const ours = await walkNtfsDriver(fs);
          assert.ok(ours.length > BIG_DIR_FILES + 100, `only ${ours.length} entries walked`);
          const { theirs, statfs, streams } = await withNtfs3g(fixture.image, {}, async (dir) => ({
            theirs: await walkNtfs3g(dir),
            statfs: await statfsOf(dir),
            streams: new Map(await Promise.all(fixture.streamPaths.map(async (p) => [p, await ntfs3gStreams(dir, p)] as const))),
          }));
          assert.deepEqual(ours, theirs);

          const s = await fs.statfs();
          assert.equal(s.exact, true, s.reason);
          assert.deepEqual({ bsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, namelen: s.namelen }, statfs);

          for (const [path, want] of streams) {
            const ino = await resolve(fs, path);
            const names = await fs.listxattr(ino);
            assert.deepEqual([...names].sort(), [...want.keys()].sort(), `${path}: stream names`);
            for (const [name, value] of want) {
              const got = await fs.getxattr(ino, name);
              if (value) assert.ok(got.equals(value), `${path}: ${name}`);
              else assert.ok(got.length > 65536, `${path}: ${name} could not be read through ntfs-3g's xattr interface, but is only ${got.length} bytes`);
            }
          }
          await assert.rejects(fs.getxattr(await resolve(fs, '/streams/host'), 'user.nope'), { code: 'ENODATA' });

          const info = await ntfsinfoVolume(fixture.image);
          assert.equal(fs.label, info.get('Volume Name'));
          assert.equal(`${fs.volumeInformation.majorVersion}.${fs.volumeInformation.minorVersion}`, info.get('Volume Version'));
          assert.equal(fs.volumeInformation.flags, Number(info.get('Volume Flags')));
          assert.equal(fs.volume.clusterSize, Number(info.get('Cluster Size')));
          assert.equal(s.blocks, Number(info.get('Volume Size in Clusters')));
          assert.equal(s.bfree, Number(info.get('Free Clusters')?.split(' ')[0]));
          assert.equal(fs.volume.boot.mftRecordSize, Number(info.get('MFT Record Size')));
          assert.equal(fs.uuid, (await sh('blkid', ['-p', '-o', 'value', '-s', 'UUID', fixture.image])).trim());
          assert.equal(fs.label, (await sh('blkid', ['-p', '-o', 'value', '-s', 'LABEL', fixture.image])).trim());
          assert.deepEqual(fs.warnings, []);
        } finally {
          await close();
        }
      });
    });
  }

  describe('on the 4 KiB fixture', () => {
    let fixture: TreeImage;
    let fs: NtfsFilesystem;
    let close: () => Promise<void>;
    before(async function () {
      if (why) this.skip();
      fixture = await buildTreeImage({ label: 'lookups' });
      ({ fs, close } = await openImage(fixture.image));
    });
    after(async () => close?.());

    it('is what the registry opens for blkid TYPE ntfs', async () => {
      const src = await RawFileSource.open(fixture.image);
      try {
        const opened = await openFilesystem('ntfs', src, '/dev/sda1');
        assert.equal(opened.type, 'ntfs');
        assert.equal(opened.rootIno, 5);
        assert.equal(opened.label, 'lookups');
      } finally {
        await src.close();
      }
    });

    it('looks names up exactly, as ntfs-3g does, and ignoring case on request', async () => {
      const names = await resolve(fs, '/names');
      const readme = await fs.lookup(names, 'Readme');
      const README = await fs.lookup(names, 'README');
      assert.ok(readme && README && readme !== README);
      assert.equal(await fs.lookup(names, 'readme'), undefined);
      assert.equal(await fs.lookupIgnoringCase(names, 'rEaDmE'), README, 'the first name in index order ("README" sorts before "Readme")');
      assert.equal(await fs.lookupIgnoringCase(names, 'README.txt'), await fs.lookup(names, 'readme.TXT'));
      assert.equal(await fs.lookup(names, 'x'.repeat(255)), await fs.lookupIgnoringCase(names, 'X'.repeat(255)));
      assert.equal(await fs.lookup(names, 'x'.repeat(256)), undefined);
      assert.equal(await fs.lookup(names, 'clef 𝄞 music') !== undefined, true);
      assert.equal(await fs.lookup(fs.rootIno, 'no such name'), undefined);
      // Metadata files are not listed but are found, as on ntfs-3g.
      assert.equal(await fs.lookup(fs.rootIno, '$MFT'), 0);
      assert.equal(await fs.lookup(fs.rootIno, '$UpCase'), 10);
      assert.ok(!(await fs.readdir(fs.rootIno)).some((e) => e.name.startsWith('$')));
      assert.equal(await fs.lookup(names, '..'), fs.rootIno);
      assert.equal(await fs.lookup(fs.rootIno, '..'), fs.rootIno);
    });

    it('hides DOS 8.3 aliases from listings but finds them, and shows every name with its namespace', async () => {
      const dos = await resolve(fs, '/dos');
      const long = await fs.lookup(dos, 'A Long File Name.txt');
      assert.equal(await fs.lookup(dos, 'ALONGF~1.TXT'), long);
      assert.deepEqual((await fs.readdir(dos)).map((e) => e.name).sort(), ['A Long File Name.txt', 'hidden', 'readonly', 'system-hidden']);
      const fns = await fs.fileNames(long!);
      assert.deepEqual(fns.map((f) => [f.name, f.namespace, f.parentRecord]).sort(), [['A Long File Name.txt', 'win32', dos], ['ALONGF~1.TXT', 'dos', dos]].sort());
      const many = await resolve(fs, '/links/many');
      assert.equal((await fs.fileNames(many)).length, LINKS_MANY + 1);
      assert.ok((await fs.inode(many)).hasAttributeList, '/links/many should need an attribute list');
      const frag = await fs.inode(await resolve(fs, '/fragmented/checkerboard'));
      assert.ok(frag.hasAttributeList, 'the checkerboard file should need an attribute list');
      assert.ok(frag.attributes.find((a) => a.type === 0x80)!.runs!.length >= 2 * FRAGMENTS - 1);
    });

    it('reads $FILE_NAME and $STANDARD_INFORMATION times as ntfsinfo prints them', async () => {
      const ino = await resolve(fs, '/times/old');
      const out = await sh('ntfsinfo', ['-f', '-i', String(ino), fixture.image]);
      const si = await fs.standardInformation(ino);
      const [fn] = await fs.fileNames(ino);
      const printed = [...out.matchAll(/File Altered Time:\s+(.+)$/gm)].map((m) => Date.parse(m[1].trim().replace(/^\w+ (\w+) +(\d+) ([\d:]+) (\d+) UTC$/, '$1 $2 $4 $3 UTC')) / 1000);
      // ntfsinfo rounds a time before 1970 down where ntfs-3g (and we) truncate toward zero: a second apart at most.
      assert.ok(Math.abs(printed[0] - si.lastDataChangeTime.sec) <= 1, `${printed[0]} vs ${si.lastDataChangeTime.sec}`);
      assert.equal(printed[1], fn.lastDataChangeTime.sec);
      assert.ok(si.lastDataChangeTime.sec < 0, 'a time before 1970');
      assert.notEqual(si.lastDataChangeTime.sec, fn.lastDataChangeTime.sec, 'touch -m changes $STANDARD_INFORMATION only');
    });

    it('walks a multi-level directory index by lookup as well as by listing', async () => {
      const big = await resolve(fs, BIG_DIR);
      const listing = await fs.readdir(big);
      assert.equal(listing.length, BIG_DIR_FILES);
      for (const i of [0, 1, 77, 777, BIG_DIR_FILES - 1]) {
        const name = `entry-${String(i).padStart(5, '0')}-${'n'.repeat(i % 40)}`;
        assert.equal(await fs.lookup(big, name), listing.find((e) => e.name === name)!.ino, name);
        assert.equal(await fs.lookupIgnoringCase(big, name.toUpperCase()), listing.find((e) => e.name === name)!.ino);
      }
      assert.equal(await fs.lookup(big, 'entry-99999'), undefined);
    });

    it('names reparse tags, and shows extents with holes and compressed units', async () => {
      const wof = await fs.reparsePoint(await resolve(fs, '/reparse/wof-compressed'));
      assert.equal(wof?.tagName, 'WOF');
      assert.equal((await fs.reparsePoint(await resolve(fs, '/reparse/junction')))?.tagName, 'MOUNT_POINT');
      assert.equal((await fs.reparsePoint(await resolve(fs, '/reparse/onedrive-placeholder')))?.tagName, 'CLOUD');
      const holes = await resolve(fs, '/sparse/holes');
      const ext = await fs.extents(holes);
      assert.ok(ext.some((e) => e.kind === 'hole') && ext.some((e) => e.kind === 'data'));
      assert.equal(ext.reduce((n, e) => n + e.length, 0), (await fs.getattr(holes)).size);
      for (const e of ext.filter((x) => x.kind === 'hole')) assert.ok((await fs.read(holes, e.offset, Math.min(e.length, 65536))).every((b) => b === 0));
      const text = await fs.extents(await resolve(fs, '/compressed/text'));
      assert.ok(text.some((e) => e.kind === 'compressed'), JSON.stringify(text));
      assert.deepEqual(await fs.extents(await resolve(fs, '/files/f100')), [{ offset: 0, length: 100, kind: 'inline' }]);
    });

    it('shows ntfs-3g\'s system.ntfs_* attributes (descriptor, DOS attributes, reparse data, times) for every file', async () => {
      const names = ['system.ntfs_acl', 'system.ntfs_attrib', 'system.ntfs_attrib_be', 'system.ntfs_reparse_data', 'system.ntfs_times'];
      const metadata = ['/$MFT', '/$Volume', '/$Secure', '/$UpCase', '/$Boot', '/$LogFile'];
      const theirs = await withNtfs3g(fixture.image, {}, async (dir) => {
        const values = new Map<string, string>();
        for (const name of names) {
          const r = await execa('getfattr', ['-R', '-h', '-n', name, '-e', 'hex', '--absolute-names', dir, ...metadata.map((m) => dir + m)], { reject: false });
          let file = '';
          for (const line of r.stdout.split('\n')) {
            if (line.startsWith('# file: ')) file = getfattrPath(line.slice(8)).slice(dir.length) || '/';
            else if (line.startsWith(`${name}=`)) values.set(`${file}\0${name}`, line.slice(name.length + 3));
          }
        }
        return values;
      });
      const paths = [...(await walkNtfsDriver(fs)).map((n) => n.path), ...metadata];
      let compared = 0;
      for (const path of paths) {
        const ino = await resolve(fs, path);
        for (const name of names) {
          const want = theirs.get(`${path}\0${name}`) ?? null;
          const got = await fs.getxattr(ino, name).then((b) => b.toString('hex'), (e: { code: string }) => (e.code === 'ENODATA' ? null : Promise.reject(e)));
          assert.equal(got, want, `${path}: ${name}`);
          if (want !== null) compared++;
        }
      }
      assert.ok(compared > paths.length * 4, `only ${compared} values compared`);
      const sd = await fs.securityDescriptor(await resolve(fs, '/files/f100'));
      assert.equal(sd.owner.text, 'S-1-5-32-544');
      assert.deepEqual(await fs.ownership(await resolve(fs, '/files/f100')), { owner: 'S-1-5-32-544', group: 'S-1-5-32-544' }, 'no user mapping: unmapped');
    });

    it('enumerates every inode, and deleted MFT records with deleted: true', async () => {
      const copy = join(scratchDir('ntfs-deleted'), 'deleted.img');
      await copyFile(fixture.image, copy);
      await withNtfs3g(copy, { readWrite: true }, async (dir) => {
        await sh('rm', ['-r', join(dir, 'deep'), join(dir, 'files', 'f65537')]);
      });
      const { fs: after, close: closeAfter } = await openImage(copy);
      try {
        const live = new Set<number>();
        const deleted = new Map<number, number>();
        for await (const e of after.inodes({ deleted: true })) {
          if (e.deleted) deleted.set(e.ino, e.stat.size);
          else live.add(e.ino);
        }
        const wasFile = await resolve(fs, '/files/f65537');
        const wasLeaf = await resolve(fs, '/deep/a/b/c/d/leaf.txt');
        assert.equal(deleted.get(wasFile), 65537);
        assert.ok(deleted.has(wasLeaf));
        assert.ok(!live.has(wasFile) && live.has(fs.rootIno) && live.has(0));
        const plain: number[] = [];
        for await (const e of after.inodes()) plain.push(e.ino);
        assert.deepEqual(plain, [...live].sort((a, b) => a - b));
      } finally {
        await closeAfter();
      }
    });
  });

  it('maps $Secure owners through the volume\'s .NTFS-3G/UserMapping as ntfs-3g does, and reports others as unmapped', async function () {
    if (why) this.skip();
    const image = await mkntfs(join(scratchDir('ntfs-usermap'), 'usermap.img'), { sizeMiB: 32, label: 'mapped' });
    const domain = 'S-1-5-21-1111111111-2222222222-3333333333';
    await withNtfs3g(image, { readWrite: true }, async (m) => {
      await sh('mkdir', [join(m, '.NTFS-3G')]);
      await sh('sh', ['-c', `printf '1000::${domain}-1001\\n:1000:${domain}-513\\n# a comment\\n' > '${join(m, '.NTFS-3G', 'UserMapping')}'`]);
    });
    // ntfs-3g reads the mapping when it mounts: files made now get mapped owners, kept in $Secure.
    await withNtfs3g(image, { readWrite: true }, async (m) => {
      await sh('sh', ['-c', `cd '${m}' && echo hi > owned && chown 1000:1000 owned && echo x > by-root && mkdir udir && chown 1000 udir`]);
    });
    await guardImages([image], async () => {
      const { fs: mapped, close: closeMapped } = await openImage(image);
      try {
        const theirs = await withNtfs3g(image, {}, async (dir) => {
          const out = new Map<string, { uid: number; gid: number; acl: string }>();
          for (const name of ['owned', 'by-root', 'udir']) {
            const [uid, gid] = (await sh('stat', ['-c', '%u %g', join(dir, name)])).trim().split(' ').map(Number);
            const acl = (await sh('getfattr', ['-h', '-n', 'system.ntfs_acl', '-e', 'hex', '--absolute-names', join(dir, name)])).split('\n').find((l) => l.startsWith('system.ntfs_acl='))!.slice(18);
            out.set(name, { uid, gid, acl });
          }
          return out;
        });
        for (const [name, t] of theirs) {
          const ino = await resolve(mapped, `/${name}`);
          const own = await mapped.ownership(ino);
          assert.equal((await mapped.securityDescriptor(ino)).raw.toString('hex'), t.acl, `${name}: descriptor`);
          assert.ok((await mapped.standardInformation(ino)).securityId >= 0x100, `${name}: its descriptor should be in $Secure`);
          // ntfs-3g shows an unmapped owner as root; we say it is unmapped.
          assert.equal(own.uid ?? 0, t.uid, `${name}: uid`);
          assert.equal(own.gid ?? 0, t.gid, `${name}: gid`);
        }
        const owned = await mapped.ownership(await resolve(mapped, '/owned'));
        assert.deepEqual(owned, { owner: `${domain}-1001`, group: `${domain}-513`, uid: 1000, gid: 1000 });
        const byRoot = await mapped.ownership(await resolve(mapped, '/by-root'));
        assert.equal(byRoot.uid, undefined);
        // The tree view stays ntfs-3g's default-options view (no mapping there): owner 0, mode 0777.
        const st = await mapped.getattr(await resolve(mapped, '/owned'));
        assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [0, 0, 0o777]);
      } finally {
        await closeMapped();
      }
    });
  });
});
