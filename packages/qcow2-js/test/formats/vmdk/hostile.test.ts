/**
 * vmdk hostile input: descriptors that name files they should not (judged
 * by the backing policy as QEMU would resolve them), thousands of extents,
 * nested descriptors, unsupported ESX types, grain directories and tables
 * that point anywhere (past the file, into themselves), broken compressed
 * grains; each refused with a typed error naming the image, in bounded time
 * and memory. Then mutated images (sparse, stream-optimized, split, flat)
 * in memory.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { BackingRefusedError, describeImage, openImage, Qcow2Error, readNamedFiles, type OpenImageOptions } from '../../../src/index.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { makeRaw, MiB, qemuImg } from '../../support/qemu.ts';
import { fuzzSeeds } from '../../support/formatFuzzer.ts';
import { makeFormatSeeds } from '../../support/formatSeeds.ts';
import { descriptorFile, vmwareStreamOptimized } from './build.ts';

const CASES = Number(process.env.GUESTLENS_FUZZ_CASES ?? 250);

async function failure(image: string, options: OpenImageOptions = {}): Promise<Error> {
  try {
    const top = await openImage(image, options);
    try {
      const end = Math.min(top.size, 16 * MiB);
      for (let off = 0; off < end; off += MiB) await top.read(off, Math.min(MiB, end - off));
    } finally {
      await top.close();
    }
  } catch (err) {
    assert.ok(err instanceof Qcow2Error, `expected a typed error, got ${err instanceof Error ? err.stack : String(err)}`);
    assert.equal(err.userFacing, true);
    return err;
  }
  assert.fail(`${image}: read without error`);
}

describe('vmdk: hostile images', function () {
  this.timeout(300_000);
  let dir: string;
  let sparse: Buffer;
  let stream: Buffer;

  before(async () => {
    dir = scratchDir('vmdk-hostile');
    const raw = join(dir, 'source.raw');
    await makeRaw(raw, 3 * MiB, [[0, MiB + 4096], [2 * MiB + 100, 100_000]], 9);
    await qemuImg(['convert', '-q', '-O', 'vmdk', raw, join(dir, 's.vmdk')]);
    await qemuImg(['convert', '-q', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, join(dir, 'o.vmdk')]);
    sparse = await readFile(join(dir, 's.vmdk'));
    stream = await readFile(join(dir, 'o.vmdk'));
  });

  async function write(name: string, content: string | Buffer): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, content);
    return path;
  }

  describe('named files', () => {
    it('a descriptor naming /etc/shadow as an extent: refused under --backing same-dir (before it is opened), listed by image info under allow', async () => {
      const image = await write('shadow.vmdk', descriptorFile('monolithicFlat', ['RW 1 FLAT "/etc/shadow" 0']));
      await guardImages([image, '/etc/shadow'], async () => {
        const err = await failure(image, { backingPolicy: 'same-dir' });
        assert.ok(err instanceof BackingRefusedError, err.message);
        assert.match(err.message, /names VMDK extent file "\/etc\/shadow", which guestlens refuses/);
        const top = await openImage(image);
        try {
          const info = describeImage(top)[0];
          assert.equal(info['format-specific']?.type, 'vmdk');
          assert.deepEqual(info['format-specific']?.type === 'vmdk' ? info['format-specific'].data.extents.map((e) => e.filename) : [], ['/etc/shadow']);
        } finally {
          await top.close();
        }
      });
      // The overlay's walk sees the same name, by the same parser.
      assert.deepEqual((await readNamedFiles(image, 'vmdk')).extentPaths, ['/etc/shadow']);
    });

    it('names QEMU resolves unlike plain paths: "file:/etc/shadow" is /etc/shadow, a protocol other than file is refused, a name split over two lines counts', async () => {
      const viaFile = await write('file-proto.vmdk', descriptorFile('monolithicFlat', ['RW 1 FLAT "file:/etc/shadow" 0']));
      assert.ok((await failure(viaFile, { backingPolicy: 'same-dir' })) instanceof BackingRefusedError);
      assert.deepEqual((await readNamedFiles(viaFile, 'vmdk')).extentPaths, ['/etc/shadow']);
      const nbd = await write('nbd.vmdk', descriptorFile('monolithicFlat', ['RW 1 FLAT "nbd:/tmp/socket" 0']));
      assert.match((await failure(nbd)).message, /would open with the "nbd" protocol/);
      const split = await write('split.vmdk', descriptorFile('monolithicFlat', ['RW', '1 FLAT "/etc/shadow" 0']));
      assert.ok((await failure(split, { backingPolicy: 'same-dir' })) instanceof BackingRefusedError);
    });

    it('a sparse extent that is itself a descriptor (nested descriptors) is refused, by the reader and by the named-files walk', async () => {
      const inner = Buffer.from(sparse);
      inner.writeBigUInt64LE(0n, 12);
      await write('nested-inner.vmdk', inner);
      const outer = await write('nested.vmdk', descriptorFile('twoGbMaxExtentSparse', ['RW 6144 SPARSE "nested-inner.vmdk"']));
      assert.match((await failure(outer)).message, /itself a descriptor; nested VMDK descriptors are not read/);
      await assert.rejects(readNamedFiles(outer, 'vmdk', async () => undefined), /nested VMDK descriptors/);
    });

    it('a descriptor with thousands of extents opens in bounded time; beyond the limit it is refused', async () => {
      await write('tiny.raw', Buffer.alloc(512, 0x5a));
      const many = await write('many.vmdk', descriptorFile('monolithicFlat', Array.from({ length: 3000 }, () => 'RW 1 FLAT "tiny.raw" 0')));
      const top = await openImage(many);
      try {
        assert.equal(top.size, 3000 * 512);
        assert.ok((await top.read(0, top.size)).every((b) => b === 0x5a));
      } finally {
        await top.close();
      }
      const tooMany = await write('too-many.vmdk', descriptorFile('monolithicFlat', Array.from({ length: 9000 }, () => 'RW 1 FLAT "tiny.raw" 0')));
      assert.match((await failure(tooMany)).message, /more than 8192 extents/);
    });
  });

  describe('structures', () => {
    it('ESX formats are named as unsupported: vmfsSparse (COWD), createType vmfs/vmfsSparse/seSparse, VMFS extents', async () => {
      const cowd = Buffer.from(sparse);
      cowd.write('COWD', 0, 'latin1');
      assert.match((await failure(await write('cowd.vmdk', cowd))).message, /VMware ESX sparse extent \(COWD, vmfsSparse\)/);
      for (const type of ['vmfs', 'vmfsSparse', 'seSparse']) {
        assert.match((await failure(await write(`${type}.vmdk`, descriptorFile(type, ['RW 1 VMFS "tiny.raw"'])))).message, new RegExp(`VMware ESX disk \\(createType "${type}"\\)`));
      }
      assert.match((await failure(await write('vmfs-extent.vmdk', descriptorFile('monolithicFlat', ['RW 1 VMFS "tiny.raw"'])))).message, /a VMFS extent/);
      assert.match((await failure(await write('custom.vmdk', descriptorFile('custom', ['RW 1 FLAT "tiny.raw" 0'])))).message, /createType "custom" is not supported/);
      assert.match((await failure(await write('bad-line.vmdk', descriptorFile('monolithicFlat', ['RW 1 FLAT "tiny.raw"'])))).message, /invalid extent line/);
    });

    it('a grain directory past the end of the file, a grain table past it, a grain past it', async () => {
      const gd = Number(sparse.readBigUInt64LE(56)) * 512;
      const past = Buffer.from(sparse);
      past.writeBigUInt64LE(BigInt(sparse.length) * 4n, 56);
      assert.match((await failure(await write('gd-past.vmdk', past))).message, /grain directory .* lie past the end of the file/);
      const gt = Buffer.from(sparse);
      gt.writeUInt32LE(0x100000, gd);
      assert.match((await failure(await write('gt-past.vmdk', gt))).message, /grain table at offset .* lies past its end/);
      const grain = Buffer.from(sparse);
      const table = sparse.readUInt32LE(gd) * 512;
      grain.writeUInt32LE(0x100000, table);
      assert.match((await failure(await write('grain-past.vmdk', grain))).message, /past its end/);
    });

    it('a grain table "loop": every directory entry on one table, a table pointing at the header and at itself: read, bounded, no hang', async () => {
      const gd = Number(sparse.readBigUInt64LE(56)) * 512;
      const looped = Buffer.from(sparse);
      const table = sparse.readUInt32LE(gd);
      for (let i = 0; i < 8; i++) looped.writeUInt32LE(table, gd + i * 4);
      for (let i = 0; i < 16; i++) looped.writeUInt32LE(i % 2 ? table : 1, table * 512 + i * 4);
      const image = await write('loop.vmdk', looped);
      const top = await openImage(image);
      try {
        const bytes = await top.read(0, top.size);
        assert.equal(bytes.length, top.size);
      } finally {
        await top.close();
      }
    });

    it('broken compressed grains: a marker claiming gigabytes, data that does not inflate, data that inflates to more than a grain', async () => {
      const gd = Number(stream.readBigUInt64LE(56)) * 512;
      const table = stream.readUInt32LE(gd) * 512;
      const grain = stream.readUInt32LE(table) * 512;
      const huge = Buffer.from(stream);
      huge.writeUInt32LE(0x7fffffff, grain + 8);
      assert.match((await failure(await write('grain-huge.vmdk', huge))).message, /its marker says 2147483647 bytes/);
      const garbage = Buffer.from(stream);
      garbage.fill(0x77, grain + 12, grain + 40);
      assert.match((await failure(await write('grain-garbage.vmdk', garbage))).message, /does not inflate/);
      const zlib = await import('node:zlib');
      const big = zlib.deflateSync(Buffer.alloc(65536 * 2, 1));
      const bomb = Buffer.from(stream);
      bomb.writeUInt32LE(big.length, grain + 8);
      big.copy(bomb, grain + 12);
      assert.match((await failure(await write('grain-bomb.vmdk', bomb))).message, /inflates to more than a grain/);
    });

    it('a footer that is not one (stream-optimized, GD at end) and a VMDK version 4 header', async () => {
      const vmware = vmwareStreamOptimized(Buffer.alloc(MiB, 3));
      const broken = Buffer.from(vmware);
      broken.writeUInt32LE(7, broken.length - 1536 + 12);
      assert.match((await failure(await write('footer.vmdk', broken))).message, /not a footer marker/);
      const v4 = Buffer.from(sparse);
      v4.writeUInt32LE(4, 4);
      assert.match((await failure(await write('v4.vmdk', v4))).message, /VMDK version 4 is not supported/);
    });

    it('the CID check: a parent whose CID is not the parentCID recorded fails the read, as in QEMU', async () => {
      const base = await write('cid-base.vmdk', sparse);
      const child = join(dir, 'cid-child.vmdk');
      await qemuImg(['create', '-q', '-f', 'vmdk', '-F', 'vmdk', '-b', 'cid-base.vmdk', child]);
      const changed = Buffer.from(sparse);
      changed.write('CID=00000001', changed.indexOf('CID='), 'latin1');
      await writeFile(base, changed);
      const qemu = await execa('qemu-img', ['convert', '-O', 'raw', child, join(dir, 'cid.raw')], { reject: false });
      assert.notEqual(qemu.exitCode, 0, 'qemu-img refuses the read too');
      assert.match((await failure(child)).message, /not the parentCID .* the parent changed since/);
    });
  });

  it(`${CASES} mutated images read or are refused with typed errors`, async () => {
    const runSeed = Number(process.env.GUESTLENS_FUZZ_SEED ?? Date.now() % 0x7fffffff);
    const result = await fuzzSeeds(await makeFormatSeeds('vmdk', dir), CASES, dir, runSeed);
    console.log(`      vmdk fuzz run seed ${runSeed}: ${result.read} read, ${result.refused} refused; against qemu-img: ${JSON.stringify(result.verdicts)}`);
  });
});
