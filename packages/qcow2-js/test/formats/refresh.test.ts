/**
 * refresh() of every native format: an image written after it was opened
 * (by qemu-io, as a running VM would) reads as qemu-img reads it once the
 * layer is refreshed; cached tables and grains are not served stale.
 */
import { join } from 'node:path';
import { openImage } from '../../src/index.ts';
import { scratchDir } from '../../../../test/support/scratch.ts';
import { assertSameBytes, makeRaw, MiB, qemuImg, qemuIo } from '../support/qemu.ts';

describe('native formats: refresh() sees what was written after open', function () {
  this.timeout(120_000);
  let dir: string;
  let source: string;

  before(async () => {
    dir = scratchDir('refresh');
    source = join(dir, 'source.raw');
    await makeRaw(source, 8 * MiB, [[0, 2 * MiB]], 81);
  });

  for (const [format, options, ext] of [
    ['vdi', [], 'vdi'],
    ['vpc', [], 'vhd'],
    ['vhdx', ['-o', 'block_size=1M'], 'vhdx'],
    ['vmdk', [], 'vmdk'],
    ['vmdk', ['-o', 'subformat=twoGbMaxExtentSparse'], 'vmdk'],
  ] as const) {
    it(`${format} ${options.join(' ')}`, async () => {
      const image = join(dir, `live-${format}-${options.length}.${ext}`);
      await qemuImg(['convert', '-q', '-O', format, ...options, source, image]);
      const top = await openImage(image, { format });
      try {
        await top.read(0, top.size);
        await qemuIo(image, ['write -P 0x7e 5M 1M', 'write -P 0x7f 100k 4k'], format);
        await top.refresh();
        const ref = join(dir, `ref-${format}-${options.length}.raw`);
        await qemuImg(['convert', '-q', '-f', format, '-O', 'raw', image, ref]);
        await assertSameBytes(top, ref, image);
      } finally {
        await top.close();
      }
    });
  }
});
