import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { createOverlay } from '@guestlens/overlay';
import { scratchDir } from '../../../test/support/scratch.ts';
import { guardImages } from '../../../test/support/imageGuard.ts';
import { sh } from '../../../test/support/run.ts';
import { execa } from 'execa';
import { assertNoOverlayDirs, assertOverlayReads, assertSameGuestBytes, makeRawImage, MiB } from './fixtures.ts';

/**
 * Every format a guest disk arrives in, converted by qemu-img from one raw
 * disk, overlaid by us, and compared byte for byte with the original.
 */
describe('overlay: every supported backing format', () => {
  let dir: string;
  let source: string;
  before(() => {
    dir = scratchDir('formats');
    source = join(dir, 'source.raw');
    makeRawImage(source, 4 * MiB);
  });
  afterEach(assertNoOverlayDirs);

  const variants: { name: string; format: string; options: string[]; files?: string[] }[] = [
    { name: 'raw', format: 'raw', options: [] },
    { name: 'qcow2', format: 'qcow2', options: [] },
    { name: 'qcow2-compressed', format: 'qcow2', options: ['-c'] },
    { name: 'qcow2-v2', format: 'qcow2', options: ['-o', 'compat=0.10'] },
    { name: 'vmdk-sparse', format: 'vmdk', options: [] },
    { name: 'vmdk-stream', format: 'vmdk', options: ['-o', 'subformat=streamOptimized'] },
    { name: 'vmdk-flat', format: 'vmdk', options: ['-o', 'subformat=monolithicFlat'], files: ['vmdk-flat-flat.vmdk'] },
    { name: 'vmdk-split', format: 'vmdk', options: ['-o', 'subformat=twoGbMaxExtentSparse'], files: ['vmdk-split-s001.vmdk'] },
    { name: 'vdi', format: 'vdi', options: [] },
    { name: 'vhdx', format: 'vhdx', options: [] },
    { name: 'vpc-dynamic', format: 'vpc', options: [] },
    { name: 'vpc-fixed', format: 'vpc', options: ['-o', 'subformat=fixed'] },
  ];

  for (const v of variants) {
    it(`${v.name}: detected as ${v.format}, the overlay shows the same bytes as the original`, async () => {
      const image = join(dir, `${v.name}.${v.format === 'vpc' ? 'vhd' : v.format}`);
      if (v.format === 'raw') await sh('cp', [source, image]);
      else await sh('qemu-img', ['convert', '-f', 'raw', '-O', v.format, ...v.options, source, image]);
      const guarded = [image, ...(v.files ?? []).map((f) => join(dir, f))];
      for (const f of guarded) assert.ok(statSync(f).isFile(), `${f} was made`);

      await guardImages(guarded, async () => {
        const overlay = await createOverlay(image);
        try {
          assert.equal(overlay.format, v.format);
          assert.equal(overlay.chain[0].format, v.format);
          assert.equal(overlay.chain[0].formatFrom, 'probed');
          assert.ok(overlay.chain[0].virtualSize >= 4 * MiB, `virtual size ${overlay.chain[0].virtualSize}`);
          if (v.files) assert.deepEqual(overlay.chain[0].extents, v.files.map((f) => join(dir, f)));
          assert.equal(
            overlay.backing,
            `json:{"driver":"${v.format}","file":{"driver":"file","filename":"${image}","locking":"off"}}`,
          );
          await assertSameGuestBytes(overlay.path, source, 'raw');
          await assertSameGuestBytes(overlay.path, image, v.format);
          await assertOverlayReads(overlay.path, 'read 0 64k');
        } finally {
          await overlay.close();
        }
        // The explicit format gives the same overlay.
        const explicit = await createOverlay(image, { format: v.format });
        try {
          assert.equal(explicit.chain[0].formatFrom, 'given');
          await assertSameGuestBytes(explicit.path, source, 'raw');
        } finally {
          await explicit.close();
        }
      });
    });
  }

  it('a block device (a read-only loop device): opened with the host_device driver', async function () {
    const image = join(dir, 'loop.raw');
    await sh('cp', [source, image]);
    const attached = await execa('losetup', ['--find', '--show', '--read-only', image], { reject: false });
    if (attached.exitCode !== 0) {
      console.log(`      (no loop device here: ${String(attached.stderr).trim()})`);
      this.skip();
    }
    const device = String(attached.stdout).trim();
    try {
      await guardImages([image], async () => {
        const overlay = await createOverlay(device);
        try {
          assert.equal(overlay.format, 'raw');
          assert.deepEqual(overlay.chain.map((e) => [e.filename, e.virtualSize, e.blockDevice]), [[device, 4 * MiB, true]]);
          assert.equal(overlay.backing, `json:{"driver":"raw","file":{"driver":"host_device","filename":"${device}","locking":"off"}}`);
          await assertSameGuestBytes(overlay.path, source, 'raw');
        } finally {
          await overlay.close();
        }
      });
    } finally {
      await sh('losetup', ['-d', device]);
    }
  });
});
