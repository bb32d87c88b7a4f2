/**
 * extent() exactly as QEMU maps the same image: our runs of data, compressed
 * and zero bytes equal `qemu-img map --output=json`'s, for images made by the
 * real qemu-img/qemu-io (zero clusters, discards, compressed clusters,
 * subclusters, backing chains); and bytes of random ranges equal qemu-img's.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { makeRaw, MiB, qemuImg, qemuIo } from '../../support/qemu.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { compareWithQemuImg } from '../../../../../test/support/qemuImgCompare.ts';

describe('qcow2-js extents equal qemu-img map', function () {
  this.timeout(300_000);
  let dir: string;
  let source: string;

  before(async () => {
    dir = scratchDir('extents');
    source = join(dir, 'source.raw');
    await makeRaw(source, 16 * MiB, [[0, 2 * MiB], [6 * MiB + 777, MiB], [15 * MiB, MiB]], 3);
  });

  const cases: { name: string; make: (image: string) => Promise<string[]> }[] = [
    {
      name: 'converted data, writes, zero writes, discards',
      make: async (image) => {
        await qemuImg(['convert', '-q', '-O', 'qcow2', source, image]);
        await qemuIo(image, ['write -P 0x11 3M 100k', 'write -z 7M 256k', 'write -z -u 8M 1M', 'discard 9M 128k']);
        return [image];
      },
    },
    {
      name: 'compressed clusters (zlib and zstd), with a partly uncompressed overwrite',
      make: async (image) => {
        await qemuImg(['convert', '-q', '-c', '-O', 'qcow2', '-o', 'compression_type=zstd', source, image]);
        await qemuIo(image, ['write -P 0x22 1M 64k']);
        return [image];
      },
    },
    {
      name: 'extended L2 entries (subclusters)',
      make: async (image) => {
        await qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on,cluster_size=128k', image, '16M']);
        await qemuIo(image, ['write -P 0x33 4k 4k', 'write -P 0x34 200k 12k', 'write -z 1M 8k', 'write -P 0x35 5M 1M']);
        return [image];
      },
    },
    {
      name: 'a chain: qcow2 over qcow2 over raw',
      make: async (image) => {
        const mid = join(dir, 'mid.qcow2');
        await qemuImg(['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', source, mid]);
        await qemuIo(mid, ['write -P 0x44 2M 1M', 'write -z 0 64k']);
        await qemuImg(['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', mid, image]);
        await qemuIo(image, ['write -P 0x45 10M 64k', 'write -z 6M 64k']);
        return [image, mid, source];
      },
    },
  ];

  it('a sparse raw file: its holes are zeros, as QEMU\'s file driver maps them', async () => {
    const r = await guardImages([source], () => compareWithQemuImg(source, { format: 'raw', ranges: 6 }));
    assert.deepEqual(r.ours, r.theirs);
    assert.ok(r.ours.some((x) => x.kind === 'zero') && r.ours.some((x) => x.kind === 'data'));
    assert.deepEqual(r.mismatches, []);
  });

  for (const c of cases) {
    it(c.name, async () => {
      const image = join(dir, `${c.name.replace(/\W+/g, '_')}.qcow2`);
      const files = await c.make(image);
      const r = await guardImages(files, () => compareWithQemuImg(image, { ranges: 6 }));
      assert.deepEqual(r.ours, r.theirs, 'extent map');
      assert.deepEqual(r.mismatches, [], 'bytes');
    });
  }
});
