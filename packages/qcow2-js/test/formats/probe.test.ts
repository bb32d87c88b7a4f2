import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { KNOWN_FORMATS, probeFormat, probeFormatFile } from '../../src/index.ts';
import { scratchDir } from '../../../../test/support/scratch.ts';
import { guardImages } from '../../../../test/support/imageGuard.ts';
import { sh } from '../../../../test/support/run.ts';
import { guestLikeData, MiB } from '../support/qemu.ts';

type ImageFormat = string;

function head(bytes: [number, Buffer | string][], size = 512): Buffer {
  const b = Buffer.alloc(size);
  for (const [off, v] of bytes) (typeof v === 'string' ? Buffer.from(v, 'latin1') : v).copy(b, off);
  return b;
}

describe('formatProbe: image format by magic', () => {
  describe('the magics of the spec', () => {
    const u32be = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
    const u32le = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
    const cases: [string, Buffer, ImageFormat][] = [
      ['qcow2 version 2', head([[0, 'QFI\xfb'], [4, u32be(2)]]), 'qcow2'],
      ['qcow2 version 3', head([[0, 'QFI\xfb'], [4, u32be(3)]]), 'qcow2'],
      // Formats QEMU recognises are recognised, never read as raw (they are refused by name when opened).
      ['qcow version 1 (the old qcow format)', head([[0, 'QFI\xfb'], [4, u32be(1)]]), 'qcow'],
      ['qcow2 magic with an unknown version (qcow2: its header parser refuses the version)', head([[0, 'QFI\xfb'], [4, u32be(4)]]), 'qcow2'],
      ['qed', head([[0, 'QED\0']]), 'qed'],
      ['parallels', head([[0, 'WithoutFreeSpace'], [16, u32le(2)]]), 'parallels'],
      ['parallels (extended magic)', head([[0, 'WithouFreSpacExt'], [16, u32le(2)]]), 'parallels'],
      ['parallels magic with another version is not parallels', head([[0, 'WithoutFreeSpace'], [16, u32le(3)]]), 'raw'],
      ['bochs', head([[0, 'Bochs Virtual HD Image'], [32, 'Redolog'], [48, 'Growing'], [64, u32le(0x00020000)]]), 'bochs'],
      ['cloop', head([[0, '#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n']]), 'cloop'],
      ['luks version 1', head([[0, Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe, 0, 1])]]), 'luks'],
      ['vmdk KDMV', head([[0, 'KDMV']]), 'vmdk'],
      ['vmdk COWD', head([[0, 'COWD']]), 'vmdk'],
      ['vmdk text descriptor', head([[0, '# Disk DescriptorFile\nversion=1\n']]), 'vmdk'],
      ['vdi signature at 0x40, little-endian', head([[0x40, u32le(0xbeda107f)]]), 'vdi'],
      ['vdi signature big-endian is not vdi', head([[0x40, u32be(0xbeda107f)]]), 'raw'],
      ['vhdx', head([[0, 'vhdxfile']]), 'vhdx'],
      ['vpc footer copy at 0', head([[0, 'conectix']]), 'vpc'],
      ['zeros', Buffer.alloc(512), 'raw'],
      ['an MBR', head([[510, Buffer.from([0x55, 0xaa])]]), 'raw'],
      ['shorter than any magic', Buffer.from('QFI'), 'raw'],
      ['empty', Buffer.alloc(0), 'raw'],
    ];
    for (const [what, buf, want] of cases) {
      it(`${what} -> ${want}`, () => assert.equal(probeFormat(buf), want));
    }
    it('a VHD footer only in the last 512 bytes (fixed VHD) -> vpc', () => {
      const tail = head([[0, 'conectix']]);
      assert.equal(probeFormat(Buffer.alloc(512), tail), 'vpc');
      assert.equal(probeFormat(Buffer.alloc(512)), 'raw');
    });
    it('a dmg by its "koly" trailer, or by name as QEMU knows it', () => {
      const tail = head([[0, 'koly']]);
      assert.equal(probeFormat(Buffer.alloc(512), tail), 'dmg');
      assert.equal(probeFormat(Buffer.alloc(512), Buffer.alloc(512), '/images/old.dmg'), 'dmg');
    });
    it('knows its format names', () => {
      for (const f of ['raw', 'qcow2', 'qcow', 'qed', 'vmdk', 'vdi', 'vhdx', 'vpc', 'parallels', 'bochs', 'cloop', 'luks', 'dmg']) assert.ok(KNOWN_FORMATS.includes(f), f);
      assert.ok(!KNOWN_FORMATS.includes('vhd'));
    });
  });

  describe('images made by qemu-img convert', function () {
    let dir: string;
    let raw: string;
    before(async () => {
      dir = scratchDir('probe');
      raw = join(dir, 'source.raw');
      writeFileSync(raw, guestLikeData(2 * MiB, 1));
    });
    const made: [string, string, string[], ImageFormat][] = [
      ['qcow2', 'qcow2', [], 'qcow2'],
      ['qcow2 compat 0.10', 'qcow2', ['-o', 'compat=0.10'], 'qcow2'],
      ['vmdk monolithicSparse', 'vmdk', [], 'vmdk'],
      ['vmdk streamOptimized', 'vmdk', ['-o', 'subformat=streamOptimized'], 'vmdk'],
      ['vmdk monolithicFlat (descriptor)', 'vmdk', ['-o', 'subformat=monolithicFlat'], 'vmdk'],
      ['vdi', 'vdi', [], 'vdi'],
      ['vhdx', 'vhdx', [], 'vhdx'],
      ['vpc dynamic', 'vpc', [], 'vpc'],
      ['vpc fixed (footer only at the end)', 'vpc', ['-o', 'subformat=fixed'], 'vpc'],
      ['qed', 'qed', [], 'qed'],
      ['parallels', 'parallels', [], 'parallels'],
    ];
    for (const [what, fmt, opts, want] of made) {
      it(`${what} -> ${want}`, async () => {
        const img = join(dir, `${what.replace(/\W+/g, '_')}.${fmt}`);
        await sh('qemu-img', ['convert', '-f', 'raw', '-O', fmt, ...opts, raw, img]);
        assert.equal(await guardImages([img], () => probeFormatFile(img)), want);
      });
    }
    it('a raw disk with data -> raw', async () => {
      assert.equal(await guardImages([raw], () => probeFormatFile(raw)), 'raw');
    });
    it('an empty file -> raw', async () => {
      const empty = join(dir, 'empty.img');
      await sh('truncate', ['-s', '0', empty]);
      assert.equal(await probeFormatFile(empty), 'raw');
    });
  });
});
