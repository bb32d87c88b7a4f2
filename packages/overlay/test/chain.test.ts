import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BackingChainError,
  BackingRefusedError,
  createOverlay,
  inspectChain,
  MAX_CHAIN_DEPTH,
  UnsupportedFormatError,
} from '@guestlens/overlay';
import { scratchDir } from '../../../test/support/scratch.ts';
import { guardImages } from '../../../test/support/imageGuard.ts';
import { sh } from '../../../test/support/run.ts';
import {
  assertNoOverlayDirs,
  assertOverlayReads,
  assertSameGuestBytes,
  makeRawImage,
  MiB,
  namedIn,
  qemuImgCreate,
  qemuIoWrite,
  withQemuImgLog,
} from './fixtures.ts';

/** qcow2 -> qcow2 -> raw, each level holding its own 64 KiB pattern, backing names relative. */
async function makeChain(dir: string): Promise<{ base: string; mid: string; top: string }> {
  const base = join(dir, 'base.raw');
  const mid = join(dir, 'mid.qcow2');
  const top = join(dir, 'top.qcow2');
  writeFileSync(base, Buffer.alloc(4 * MiB));
  await qemuIoWrite(base, 'raw', 0x11, 0, 65536);
  await qemuImgCreate(mid, 'qcow2', undefined, ['-F', 'raw', '-b', 'base.raw']);
  await qemuIoWrite(mid, 'qcow2', 0x22, 65536, 65536);
  await qemuImgCreate(top, 'qcow2', undefined, ['-F', 'qcow2', '-b', 'mid.qcow2']);
  await qemuIoWrite(top, 'qcow2', 0x33, 131072, 65536);
  return { base, mid, top };
}

describe('overlay: backing chains', () => {
  afterEach(assertNoOverlayDirs);

  it('overlays a qcow2 -> qcow2 -> raw chain and reports it', async () => {
    const dir = scratchDir('chain');
    const { base, mid, top } = await makeChain(dir);
    await guardImages([base, mid, top], async () => {
      const overlay = await createOverlay(top);
      try {
        assert.deepEqual(
          overlay.chain.map((e) => [e.depth, e.filename, e.format, e.formatFrom, e.virtualSize, e.backingFilename, e.backingFormat]),
          [
            [0, top, 'qcow2', 'probed', 4 * MiB, 'mid.qcow2', 'qcow2'],
            [1, mid, 'qcow2', 'recorded', 4 * MiB, 'base.raw', 'raw'],
            [2, base, 'raw', 'recorded', 4 * MiB, undefined, undefined],
          ],
        );
        // Every level's data shows through, read from a directory where the relative names mean nothing.
        await assertOverlayReads(overlay.path, 'read -P 0x11 0 64k', { cwd: '/' });
        await assertOverlayReads(overlay.path, 'read -P 0x22 64k 64k', { cwd: '/' });
        await assertOverlayReads(overlay.path, 'read -P 0x33 128k 64k', { cwd: '/' });
        await assertSameGuestBytes(overlay.path, top, 'qcow2');

        // overlay info: the overlay, then the image reached with locking off, then its chain.
        const chain = await inspectChain(overlay.path);
        assert.deepEqual(chain.map((e) => [e.filename, e.format, e.lockingOff ?? false]), [
          [overlay.path, 'qcow2', false],
          [top, 'qcow2', true],
          [mid, 'qcow2', false],
          [base, 'raw', false],
        ]);
        assert.equal(chain[0].backingFilename, overlay.backing);

        // An overlay over our overlay works too (the chain then has two json: levels' worth of files).
        const second = await createOverlay(overlay.path);
        try {
          assert.deepEqual(second.chain.map((e) => e.filename), [overlay.path, top, mid, base]);
          await assertOverlayReads(second.path, 'read -P 0x33 128k 64k');
        } finally {
          await second.close();
        }
      } finally {
        await overlay.close();
      }
    });
  });

  it('the same-dir policy accepts a chain that stays in the image\'s directory', async () => {
    const { base, mid, top } = await makeChain(scratchDir('samedir-ok'));
    await guardImages([base, mid, top], async () => {
      const overlay = await createOverlay(top, { backing: 'same-dir' });
      await overlay.close();
      assert.equal(overlay.chain.length, 3);
    });
  });

  describe('untrusted images: named files are judged before anything opens them', () => {
    let inside: string;
    let outside: string;
    before(() => {
      const root = scratchDir('policy');
      inside = join(root, 'vm');
      outside = join(root, 'elsewhere');
      mkdirSync(inside);
      mkdirSync(outside);
      makeRawImage(join(outside, 'secret.raw'), 1 * MiB, 'secret');
    });

    /** `untouched`: the files qemu-img info would open along with the image (data file, extents), so not even the image may be passed to it. */
    async function refused(image: string, policy: 'same-dir' | 'none', named: string, role: RegExp, untouched = false): Promise<void> {
      await guardImages([image], () =>
        withQemuImgLog(async (calls) => {
          await assert.rejects(createOverlay(image, { backing: policy }), (err: Error) => {
            assert.ok(err instanceof BackingRefusedError, `${err.name}: ${err.message}`);
            assert.match(err.message, role);
            assert.ok(err.message.includes(JSON.stringify(named)) || err.message.includes(named), err.message);
            return true;
          });
          assert.equal(namedIn(calls(), named), false, `qemu-img was run on ${named}: ${JSON.stringify(calls())}`);
          if (untouched) assert.equal(namedIn(calls(), image), false, `qemu-img was run on ${image}: ${JSON.stringify(calls())}`);
          // Nothing was created either.
          assert.equal(calls().some((c) => c[0] === 'create'), false);
        }),
      );
    }

    it('same-dir refuses an absolute backing file elsewhere (/etc/shadow as raw)', async () => {
      const evil = join(inside, 'shadow.qcow2');
      await qemuImgCreate(evil, 'qcow2', '1M', ['-u', '-F', 'raw', '-b', '/etc/shadow']);
      await refused(evil, 'same-dir', '/etc/shadow', /backing file/);
      await refused(evil, 'none', '/etc/shadow', /backing file/);
    });

    it('same-dir refuses a relative backing file that climbs out with ../', async () => {
      const evil = join(inside, 'climb.qcow2');
      await qemuImgCreate(evil, 'qcow2', '1M', ['-u', '-F', 'raw', '-b', '../elsewhere/secret.raw']);
      await refused(evil, 'same-dir', join(outside, 'secret.raw'), /backing file/);
    });

    it('same-dir refuses a symbolic link inside the directory that points out of it', async () => {
      symlinkSync(join(outside, 'secret.raw'), join(inside, 'innocent.raw'));
      const evil = join(inside, 'link.qcow2');
      await qemuImgCreate(evil, 'qcow2', '1M', ['-u', '-F', 'raw', '-b', 'innocent.raw']);
      await refused(evil, 'same-dir', join(inside, 'innocent.raw'), /resolves to .*secret\.raw/);
    });

    it('same-dir refuses a qcow2 external data file elsewhere, before qemu-img info sees the image', async () => {
      const evil = join(inside, 'datafile.qcow2');
      await qemuImgCreate(join(outside, 'placeholder.qcow2'), 'qcow2', '1M', ['-o', `data_file=${join(outside, 'data.bin')}`]);
      // Same header, moved into the VM's directory: it names the data file outside.
      await sh('cp', [join(outside, 'placeholder.qcow2'), evil]);
      await refused(evil, 'same-dir', join(outside, 'data.bin'), /external data file/, true);
    });

    it('same-dir refuses a VMDK descriptor whose extent lies elsewhere, before qemu-img opens it', async () => {
      const flat = join(inside, 'flat.vmdk');
      await sh('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', join(outside, 'secret.raw'), flat]);
      const descriptor = readFileSync(flat, 'latin1').replace('"flat-flat.vmdk"', `"${join(outside, 'secret.raw')}"`);
      const evil = join(inside, 'evil.vmdk');
      writeFileSync(evil, descriptor, 'latin1');
      await refused(evil, 'same-dir', join(outside, 'secret.raw'), /VMDK extent file/, true);
    });

    it('none refuses any backing file, data file or extent, and accepts a standalone image', async () => {
      const { top } = await makeChain(scratchDir('none'));
      await refused(top, 'none', join(top, '..', 'mid.qcow2'), /backing file.*policy is "none"/);
      const alone = join(inside, 'alone.qcow2');
      await qemuImgCreate(alone, 'qcow2', '1M');
      await guardImages([alone], async () => {
        const overlay = await createOverlay(alone, { backing: 'none' });
        await overlay.close();
        assert.equal(overlay.chain.length, 1);
      });
    });

    it('no policy follows a network backing file (nbd:, json: with an nbd driver)', async () => {
      for (const backing of ['nbd://localhost/export', 'json:{"driver":"nbd","server":{"type":"unix","path":"/run/x.sock"}}']) {
        const evil = join(inside, 'net.qcow2');
        await qemuImgCreate(evil, 'qcow2', '1M', ['-u', '-F', 'raw', '-b', backing]);
        await guardImages([evil], () =>
          assert.rejects(createOverlay(evil, { backing: 'allow' }), (err: Error) => err instanceof BackingRefusedError && /local files|not a format node|file node/.test(err.message)),
        );
      }
    });
  });

  describe('broken chains', () => {
    it('a backing loop is an error, not a hang', async () => {
      const dir = scratchDir('loop');
      const a = join(dir, 'a.qcow2');
      const b = join(dir, 'b.qcow2');
      await qemuImgCreate(a, 'qcow2', '1M', ['-u', '-F', 'qcow2', '-b', 'b.qcow2']);
      await qemuImgCreate(b, 'qcow2', '1M', ['-u', '-F', 'qcow2', '-b', 'a.qcow2']);
      const self = join(dir, 'self.qcow2');
      await qemuImgCreate(self, 'qcow2', '1M', ['-u', '-F', 'qcow2', '-b', 'self.qcow2']);
      await guardImages([a, b, self], async () => {
        await assert.rejects(createOverlay(a), (err: Error) => err instanceof BackingChainError && /loops/.test(err.message) && err.message.includes(a));
        await assert.rejects(createOverlay(self), (err: Error) => err instanceof BackingChainError && /loops/.test(err.message));
      });
    });

    it(`a chain deeper than ${MAX_CHAIN_DEPTH} levels is refused`, async () => {
      const dir = scratchDir('deep');
      const levels = MAX_CHAIN_DEPTH + 2;
      await qemuImgCreate(join(dir, 'l0.qcow2'), 'qcow2', '1M');
      for (let i = 1; i < levels; i++) await qemuImgCreate(join(dir, `l${i}.qcow2`), 'qcow2', '1M', ['-u', '-F', 'qcow2', '-b', `l${i - 1}.qcow2`]);
      const top = join(dir, `l${levels - 1}.qcow2`);
      await guardImages([top], () =>
        assert.rejects(createOverlay(top), (err: Error) => err instanceof BackingChainError && new RegExp(`deeper than ${MAX_CHAIN_DEPTH} levels`).test(err.message)),
      );
    });

    it('a missing backing file names the image that names it', async () => {
      const dir = scratchDir('missing');
      const top = join(dir, 'orphan.qcow2');
      await qemuImgCreate(top, 'qcow2', '1M', ['-u', '-F', 'raw', '-b', 'gone.raw']);
      await guardImages([top], () =>
        assert.rejects(createOverlay(top), (err: Error) => err instanceof BackingChainError && err.message.startsWith(top) && err.message.includes(join(dir, 'gone.raw'))),
      );
    });

    it('a backing format guestlens does not read is refused by name', async () => {
      const dir = scratchDir('qed');
      await qemuImgCreate(join(dir, 'base.qed'), 'qed', '1M');
      const top = join(dir, 'top.qcow2');
      await qemuImgCreate(top, 'qcow2', undefined, ['-F', 'qed', '-b', 'base.qed']);
      await guardImages([top], () => assert.rejects(createOverlay(top), (err: Error) => err instanceof UnsupportedFormatError && /"qed"/.test(err.message)));
    });
  });

  describe('data files and missing formats', () => {
    it('an external data file (named relatively) is listed, opened with locking off, and read from any directory', async () => {
      const dir = scratchDir('datafile');
      const image = join(dir, 'df.qcow2');
      // qemu-img resolves the relative name against its own working directory when creating.
      await sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'data_file=df.bin', 'df.qcow2', '4M'], { cwd: dir });
      await sh('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 64k', 'df.qcow2'], { cwd: dir });
      await guardImages([image, join(dir, 'df.bin')], async () => {
        const overlay = await createOverlay(image, { backing: 'same-dir' });
        try {
          assert.equal(overlay.chain[0].dataFile, join(dir, 'df.bin'));
          const ref = JSON.parse(overlay.backing.slice(5));
          assert.deepEqual(ref['data-file'], { driver: 'file', filename: join(dir, 'df.bin'), locking: 'off' });
          await assertOverlayReads(overlay.path, 'read -P 0x5a 0 64k', { cwd: '/' });
        } finally {
          await overlay.close();
        }
      });
    });

    it('a backing level with a relative data file is refused (QEMU would resolve it against the reader\'s directory)', async () => {
      const dir = scratchDir('reldata');
      await sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'data_file=mid.bin', 'mid.qcow2', '1M'], { cwd: dir });
      const top = join(dir, 'top.qcow2');
      await qemuImgCreate(top, 'qcow2', undefined, ['-F', 'qcow2', '-b', 'mid.qcow2']);
      await guardImages([top], () => assert.rejects(createOverlay(top), (err: Error) => err instanceof BackingRefusedError && /relative path/.test(err.message)));
    });

    it('a backing file without a recorded format: QEMU\'s own reading of it is used and reported as probed', async () => {
      const dir = scratchDir('nofmt');
      const base = join(dir, 'base.raw');
      writeFileSync(base, Buffer.alloc(1 * MiB));
      await qemuIoWrite(base, 'raw', 0x77, 0, 65536);
      const top = join(dir, 'top.qcow2');
      await qemuImgCreate(top, 'qcow2', undefined, ['-F', 'raw', '-b', 'base.raw']);
      // Turn the backing-format header extension into an unknown one (old images have none).
      const header = readFileSync(top);
      const at = header.indexOf(Buffer.from('e2792aca', 'hex'));
      assert.ok(at > 0);
      Buffer.from('0badf00d', 'hex').copy(header, at);
      writeFileSync(top, header);
      await guardImages([top, base], async () => {
        const overlay = await createOverlay(top);
        try {
          assert.deepEqual(overlay.chain.map((e) => [e.format, e.formatFrom]), [['qcow2', 'probed'], ['raw', 'probed']]);
          assert.equal(overlay.chain[0].backingFormat, undefined);
          await assertOverlayReads(overlay.path, 'read -P 0x77 0 64k');
        } finally {
          await overlay.close();
        }
      });
    });
  });
});
