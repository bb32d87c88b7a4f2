/**
 * Images in formats guestlens recognises but has no reader for (qed,
 * parallels, bochs, cloop, dmg) are never read as raw. QEMU reads them
 * instead (qemu-storage-daemon over NBD) and `image info` says so; when QEMU
 * can't either (the broken headers below), `image info` says the format and
 * why, `image cat` refuses (it would otherwise stream the container's bytes as
 * the guest's disk), and `df` exits 1 naming the format. `--reader native`
 * refuses them all by name. `--format raw` always wins: the bytes are then the
 * disk, as the user said.
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

describe('images in formats guestlens has no reader for: read by QEMU, or refused by name', function () {
  this.timeout(180000);
  const images: { format: string; path: string; what: RegExp; qemuReads?: boolean }[] = [];
  let rawDisk: string;

  before(async () => {
    const dir = scratchDir('refused');
    const raw = join(dir, 'src.raw');
    await sh('truncate', ['-s', '4M', raw]);
    await sh('mkfs.ext4', ['-q', '-F', raw]);
    rawDisk = raw;
    // vmdk, vdi, vhdx and vpc are read natively (test/formats-native.test.ts).
    for (const [format, opts, what] of [
      ['parallels', [], /Parallels disk/],
      ['qed', [], /QED image/],
    ] as [string, string[], RegExp][]) {
      const path = join(dir, `disk-${images.length}.${format}`);
      await sh('qemu-img', ['convert', '-q', '-f', 'raw', '-O', format, ...opts, raw, path]);
      images.push({ format, path, what, qemuReads: true });
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

  it('image info names the format, says guestlens has no reader for it, and who reads it; image cat streams what QEMU reads or refuses', async () => {
    const rawBytes = await sh('sha256sum', [rawDisk]);
    for (const { format, path, what, qemuReads } of images) {
      await guardImages([path], async () => {
        const info = await guestlens(['image', 'info', '--json', path]);
        assert.equal(info.exitCode, 0, `${format}: ${info.stderr}`);
        const [layer] = JSON.parse(info.stdout) as { format: string; readable?: boolean; 'unreadable-reason'?: string; reader?: string; 'reader-error'?: string; 'virtual-size'?: number }[];
        assert.equal(layer.format, format, path);
        assert.equal(layer.readable, false, path);
        assert.match(layer['unreadable-reason'] ?? '', what);
        assert.equal(layer.reader, qemuReads ? 'qemu' : 'none', `${format}: reader`);
        const text = await guestlens(['image', 'info', path]);
        assert.match(text.stdout, new RegExp(`^file format: ${format}$`, 'm'));
        assert.match(text.stdout, /^readable: no /m);
        const cat = await guestlens(['image', 'cat', path], {});
        if (qemuReads) {
          assert.equal(layer['virtual-size'], 4 * MiB, `${format}: the size QEMU sees`);
          assert.match(text.stdout, /^reader: QEMU \(qemu-storage-daemon over NBD\)$/m);
          assert.equal(cat.exitCode, 0, `${format}: ${cat.stderr}`);
          const catHash = (await sh('sh', ['-c', `${JSON.stringify(join(process.cwd(), 'cli/bin/guestlens'))} image cat ${JSON.stringify(path)} | sha256sum`])).split(' ')[0];
          assert.equal(catHash, rawBytes.split(' ')[0], `${format}: the guest bytes QEMU reads`);
        } else {
          assert.match(layer['reader-error'] ?? '', /QEMU cannot read it either/, format);
          assert.match(text.stdout, /^reader: none \(/m);
          assert.equal(cat.exitCode, 1, `${format}: image cat must refuse`);
          assert.equal(cat.stdout, '', `${format}: not one byte of the container`);
          assert.match(cat.stderr, what);
        }
        const native = await guestlens(['image', 'cat', '--reader', 'native', path], {});
        assert.equal(native.exitCode, 1, `${format}: --reader native refuses`);
        assert.equal(native.stdout, '');
        assert.match(native.stderr, what);
      });
    }
  });

  it('df reads through QEMU what QEMU reads, and otherwise exits 1 naming the format; --reader native refuses them all', async () => {
    for (const { format, path, what, qemuReads } of images) {
      const r = await guardImages([path], () => guestlens(['df', path]));
      if (qemuReads) {
        assert.equal(r.exitCode, 0, `${format}: ${r.stderr}`);
        assert.match(r.stdout.split('\n')[1], /\/dev\/sda\s+\d+/, format);
      } else {
        assert.equal(r.exitCode, 1, `${format}: ${r.stderr}`);
        assert.match(r.stderr, what, format);
        assert.match(r.stderr, /and QEMU cannot read it either/, format);
        assert.equal(r.stdout.split('\n').length, 2, 'only the header');
      }
      const native = await guardImages([path], () => guestlens(['df', '--reader', 'native', path]));
      assert.equal(native.exitCode, 1, `${format}: ${native.stderr}`);
      assert.match(native.stderr, what, format);
    }
  });

  it('--format raw reads the same file as raw, as the user said', async () => {
    const { path } = images.find((i) => i.format === 'qed')!;
    const r = await guestlens(['image', 'info', '--json', '--format', 'raw', path]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { format: string }[])[0].format, 'raw');
  });
});
