/**
 * Images in formats guestlens recognises but does not read (qed, parallels,
 * bochs, cloop, dmg) are named and refused, never read as raw: `image info` says the format and that it is not
 * readable, `image cat` refuses (it would otherwise stream the container's
 * bytes as the guest's disk), and `df` exits 1 naming the format. `--format
 * raw` always wins: the bytes are then the disk, as the user said.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { guardImages } from './support/imageGuard.ts';
import { guestlens, sh } from './support/run.ts';
import { scratchDir } from './support/scratch.ts';

const MiB = 1024 * 1024;

function header(fields: [number, string | Buffer][], size = 64 * 1024): Buffer {
  const b = Buffer.alloc(size);
  for (const [at, v] of fields) (typeof v === 'string' ? Buffer.from(v, 'latin1') : v).copy(b, at);
  return b;
}

describe('images in formats guestlens does not read are refused by name', function () {
  this.timeout(180000);
  const images: { format: string; path: string; what: RegExp }[] = [];

  before(async () => {
    const dir = scratchDir('refused');
    const raw = join(dir, 'src.raw');
    await sh('truncate', ['-s', '4M', raw]);
    await sh('mkfs.ext4', ['-q', '-F', raw]);
    // vmdk, vdi, vhdx and vpc are read natively (test/formats-native.test.ts).
    for (const [format, opts, what] of [
      ['parallels', [], /Parallels disk/],
      ['qed', [], /QED image/],
    ] as [string, string[], RegExp][]) {
      const path = join(dir, `disk-${images.length}.${format}`);
      await sh('qemu-img', ['convert', '-q', '-f', 'raw', '-O', format, ...opts, raw, path]);
      images.push({ format, path, what });
    }
    const bochs = join(dir, 'disk.bochs');
    const u32 = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(n);
      return b;
    };
    writeFileSync(bochs, header([[0, 'Bochs Virtual HD Image'], [32, 'Redolog'], [48, 'Growing'], [64, u32(0x00020000)], [68, u32(512)]]));
    images.push({ format: 'bochs', path: bochs, what: /Bochs disk/ });
    const cloop = join(dir, 'disk.cloop');
    writeFileSync(cloop, header([[0, '#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n']]));
    images.push({ format: 'cloop', path: cloop, what: /cloop/ });
    const dmg = join(dir, 'disk.dmg');
    writeFileSync(dmg, Buffer.concat([Buffer.alloc(MiB, 0x33), header([[0, 'koly']], 512)]));
    images.push({ format: 'dmg', path: dmg, what: /Apple disk image/ });
  });

  it('image info names the format and says it is not readable; image cat refuses', async () => {
    for (const { format, path, what } of images) {
      await guardImages([path], async () => {
        const info = await guestlens(['image', 'info', '--json', path]);
        assert.equal(info.exitCode, 0, `${format}: ${info.stderr}`);
        const [layer] = JSON.parse(info.stdout) as { format: string; readable?: boolean; 'unreadable-reason'?: string }[];
        assert.equal(layer.format, format, path);
        assert.equal(layer.readable, false, path);
        assert.match(layer['unreadable-reason'] ?? '', what);
        const text = await guestlens(['image', 'info', path]);
        assert.match(text.stdout, new RegExp(`^file format: ${format}$`, 'm'));
        assert.match(text.stdout, /^readable: no /m);
        const cat = await guestlens(['image', 'cat', path], {});
        assert.equal(cat.exitCode, 1, `${format}: image cat must refuse`);
        assert.equal(cat.stdout, '', `${format}: not one byte of the container`);
        assert.match(cat.stderr, what);
      });
    }
  });

  it('df exits 1 naming the format, for every one of them', async () => {
    for (const { format, path, what } of images) {
      const r = await guardImages([path], () => guestlens(['df', path]));
      assert.equal(r.exitCode, 1, `${format}: ${r.stderr}`);
      assert.match(r.stderr, what, format);
      assert.equal(r.stdout.split('\n').length, 2, 'only the header');
    }
  });

  it('--format raw reads the same file as raw, as the user said', async () => {
    const { path } = images.find((i) => i.format === 'qed')!;
    const r = await guestlens(['image', 'info', '--json', '--format', 'raw', path]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { format: string }[])[0].format, 'raw');
  });
});
