/**
 * vmdk: every subformat qemu-img writes (monolithicSparse, monolithicFlat,
 * twoGbMaxExtentSparse, twoGbMaxExtentFlat, streamOptimized; zeroed grains,
 * compat6), snapshot chains made with `qemu-img create -b`, and what only
 * VMware writes, built to its specification: a stream-optimized disk whose
 * grain directory is only in the footer, version 3 headers, hand-written
 * descriptors (CRLF, several extents of mixed kinds, a flat extent at an
 * offset, RDONLY lines QEMU 7.2 ignores). Bytes, image info (CIDs, create
 * type, every extent) and extents agree with qemu-img.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describeImage, openImage } from '../../../src/index.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { makeRaw, MiB, qemuImg, qemuIo, writeBytes } from '../../support/qemu.ts';
import { assertFormatMatchesQemu } from '../../support/formats.ts';
import { descriptorFile, vmwareStreamOptimized } from './build.ts';

const SIZE = 24 * MiB;

describe('vmdk: our bytes, info and extents agree with qemu-img', function () {
  this.timeout(300_000);
  let dir: string;
  let source: string;

  before(async () => {
    dir = scratchDir('vmdk');
    source = join(dir, 'source.raw');
    await makeRaw(source, SIZE, [[0, 3 * MiB], [5 * MiB + 4321, 2 * MiB], [SIZE - MiB - 1000, MiB]], 61);
  });

  const check = (image: string, files: string[] = []) => assertFormatMatchesQemu(image, { format: 'vmdk', files: [image, ...files] });

  for (const [subformat, extents] of [
    ['monolithicSparse', []],
    ['monolithicFlat', ['-flat']],
    ['twoGbMaxExtentSparse', ['-s001']],
    ['twoGbMaxExtentFlat', ['-f001']],
    ['streamOptimized', []],
  ] as const) {
    it(`qemu-img convert -O vmdk -o subformat=${subformat}`, async () => {
      const image = join(dir, `${subformat}.vmdk`);
      await qemuImg(['convert', '-q', '-O', 'vmdk', '-o', `subformat=${subformat}`, source, image]);
      await check(image, extents.map((e) => join(dir, `${subformat}${e}.vmdk`)));
    });
  }

  it('split extents: twoGbMaxExtentSparse and twoGbMaxExtentFlat descriptors of three extents (qemu-img\'s own extent files, 8 MiB each)', async () => {
    // qemu-img splits only at 2 GiB; the same descriptors over smaller extents cost the test seconds instead of minutes.
    const raw = await readFile(source);
    const sparseLines: string[] = [];
    const flatLines: string[] = [];
    const files: string[] = [];
    for (let i = 0; i < 3; i++) {
      const part = join(dir, `split-${i}.raw`);
      await writeFile(part, raw.subarray(i * 8 * MiB, (i + 1) * 8 * MiB));
      const extent = join(dir, `split-s00${i + 1}.vmdk`);
      await qemuImg(['convert', '-q', '-O', 'vmdk', part, extent]);
      sparseLines.push(`RW ${(8 * MiB) / 512} SPARSE "split-s00${i + 1}.vmdk"`);
      flatLines.push(`RW ${(8 * MiB) / 512} FLAT "split-${i}.raw" 0`);
      files.push(part, extent);
    }
    const sparse = join(dir, 'split-sparse.vmdk');
    await writeFile(sparse, descriptorFile('twoGbMaxExtentSparse', sparseLines));
    await check(sparse, files);
    const flat = join(dir, 'split-flat.vmdk');
    await writeFile(flat, descriptorFile('twoGbMaxExtentFlat', flatLines));
    await check(flat, files);
  });

  it('zeroed grains (-o zeroed_grain=on, then zero writes of whole grains) and compat6', async () => {
    const image = join(dir, 'zeroed.vmdk');
    await qemuImg(['convert', '-q', '-O', 'vmdk', '-o', 'zeroed_grain=on', source, image]);
    await qemuIo(image, ['write -z 0 1M', 'write -z 5M 2M', 'write -P 0x51 100k 1k'], 'vmdk');
    await check(image);
    const top = await openImage(image);
    try {
      assert.equal((await top.extent(0, MiB)).kind, 'zero');
    } finally {
      await top.close();
    }
    const compat = join(dir, 'compat6.vmdk');
    await qemuImg(['convert', '-q', '-O', 'vmdk', '-o', 'compat6=on,adapter_type=lsilogic', source, compat]);
    await check(compat);
  });

  it('snapshot chains (qemu-img create -b, parentFileNameHint): three deep, mixed subformats', async () => {
    const base = join(dir, 'chain-base.vmdk');
    const mid = join(dir, 'chain-mid.vmdk');
    const top = join(dir, 'chain-top.vmdk');
    await qemuImg(['convert', '-q', '-O', 'vmdk', '-o', 'subformat=streamOptimized', source, base]);
    await qemuImg(['create', '-q', '-f', 'vmdk', '-F', 'vmdk', '-b', 'chain-base.vmdk', '-o', 'subformat=twoGbMaxExtentSparse', mid]);
    await qemuIo(mid, ['write -P 0x61 1M 1M', 'write -P 0x62 20M 4k'], 'vmdk');
    await qemuImg(['create', '-q', '-f', 'vmdk', '-F', 'vmdk', '-b', mid, top]);
    await qemuIo(top, ['write -P 0x63 1536k 1M', 'write -P 0x64 23M 1000'], 'vmdk');
    await check(top, [mid, join(dir, 'chain-mid-s001.vmdk'), base]);
  });

  it("VMware's stream-optimized disk: grain directory only in the footer, markers, the header's gdOffset GD_AT_END", async () => {
    const image = join(dir, 'vmware-stream.vmdk');
    await writeFile(image, vmwareStreamOptimized(await readFile(source)));
    await check(image);
    const top = await openImage(image);
    try {
      assert.match(String(describeImage(top)[0]['format-details']?.['grain directory']), /footer/);
    } finally {
      await top.close();
    }
    const small = join(dir, 'vmware-stream-odd.vmdk');
    await writeFile(small, vmwareStreamOptimized((await readFile(source)).subarray(0, 3 * MiB + 1536), { grainSectors: 16 }));
    await check(small);
  });

  it('a version 3 header on an uncompressed sparse extent (VMware\'s changed-block tracking), read as QEMU reads it', async () => {
    const image = join(dir, 'v3.vmdk');
    await qemuImg(['convert', '-q', '-O', 'vmdk', source, image]);
    await writeBytes(image, 4, Buffer.from([3, 0, 0, 0]));
    await check(image);
  });

  it('hand-written descriptors: CRLF, mixed flat and sparse extents, a flat extent at an offset, RDONLY lines QEMU 7.2 skips', async () => {
    const raw = await readFile(source);
    await writeFile(join(dir, 'part1.raw'), Buffer.concat([Buffer.alloc(4096, 0xee), raw.subarray(0, 8 * MiB)]));
    const sparse = join(dir, 'part2.vmdk');
    const part2 = join(dir, 'part2.raw');
    await writeFile(part2, raw.subarray(8 * MiB, 16 * MiB));
    await qemuImg(['convert', '-q', '-O', 'vmdk', part2, sparse]);
    await writeFile(join(dir, 'part3.raw'), raw.subarray(16 * MiB));
    await writeFile(join(dir, 'ignored.raw'), Buffer.alloc(MiB, 0x99));
    const descriptor = join(dir, 'custom.vmdk');
    await writeFile(
      descriptor,
      descriptorFile(
        'monolithicFlat',
        [`RW ${(8 * MiB) / 512} FLAT "part1.raw" 8`, `RW ${(8 * MiB) / 512} SPARSE "part2.vmdk"`, `RDONLY 2048 FLAT "ignored.raw" 0`, `RW ${(SIZE - 16 * MiB) / 512} FLAT "${join(dir, 'part3.raw')}" 0`, 'NOACCESS 2048 ZERO'],
        ['# a comment VMware writes', 'isNativeSnapshot="no"'],
        '\r\n',
      ),
    );
    await check(descriptor, ['part1.raw', 'part2.vmdk', 'part3.raw'].map((f) => join(dir, f)));
  });

  it('a descriptor embedded in a sparse header with capacity 0 (a "KDMV" file that is only a descriptor), naming its extents', async () => {
    const raw = await readFile(source);
    await writeFile(join(dir, 'embedded-flat.raw'), raw.subarray(0, 4 * MiB));
    const text = Buffer.from(descriptorFile('monolithicFlat', [`RW ${(4 * MiB) / 512} FLAT "embedded-flat.raw" 0`]), 'latin1');
    const header = Buffer.alloc(512);
    header.write('KDMV', 0, 'latin1');
    header.writeUInt32LE(1, 4);
    header.writeBigUInt64LE(1n, 28);
    header.writeBigUInt64LE(BigInt(Math.ceil(text.length / 512)), 36);
    header.writeUInt32LE(512, 44);
    const image = join(dir, 'embedded.vmdk');
    await writeFile(image, Buffer.concat([header, text, Buffer.alloc(512 - (text.length % 512))]));
    await check(image, [join(dir, 'embedded-flat.raw')]);
  });

  it('an extent line QEMU reads across a newline ("RW" alone, the rest on the next line) is an extent to us too', async () => {
    await writeFile(join(dir, 'split-line.raw'), Buffer.alloc(MiB, 0x33));
    const descriptor = join(dir, 'split-line.vmdk');
    await writeFile(descriptor, descriptorFile('monolithicFlat', ['RW', `${MiB / 512} FLAT "split-line.raw" 0`]));
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', descriptor])).stdout) as { 'virtual-size': number };
    assert.equal(info['virtual-size'], MiB, 'QEMU parses it as one extent');
    await check(descriptor, [join(dir, 'split-line.raw')]);
  });
});
