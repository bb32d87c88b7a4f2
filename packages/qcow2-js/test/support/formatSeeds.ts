/**
 * The fuzzer's seed images for vdi, vpc, vhdx and vmdk: small images made
 * by qemu-img and fixtures built to the specifications (a differencing VHD,
 * a VHDX with a log to replay and a differencing one, VMware's
 * stream-optimized VMDK, split and flat descriptors), each with the offsets
 * worth mutating and a way to mend its checksums. Shared by the formats'
 * hostile tests and `pnpm -s fuzz --target vmdk` (and vhdx, vpc, vdi).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { footerChecksum } from '../../src/formats/vpc/footer.ts';
import { guidString } from '../../src/formats/common/guid.ts';
import { makeRaw, MiB, qemuImg } from './qemu.ts';
import type { FormatSeed, MutableFile } from './formatFuzzer.ts';
import { makeDifferencing as vhdDifferencing } from '../formats/vpc/build.ts';
import { batEntry, layoutOf, LOG_GUID, logEntry, makeDifferencing as vhdxDifferencing, mendAll, parentLocator, setBatEntry, withLog } from '../formats/vhdx/build.ts';
import { descriptorFile, vmwareStreamOptimized } from '../formats/vmdk/build.ts';

const KiB = 1024;
const range = (from: number, count: number, step = 4) => Array.from({ length: count }, (_, i) => from + i * step);

/** Make `format`'s seeds in `dir` (with the real qemu-img). */
export async function makeFormatSeeds(format: 'vdi' | 'vpc' | 'vhdx' | 'vmdk', dir: string): Promise<FormatSeed[]> {
  const raw = join(dir, `${format}-seed.raw`);
  await makeRaw(raw, 3 * MiB, [[0, MiB + 4096], [2 * MiB + 100, 100_000]], 77);
  const convert = async (name: string, fmt: string, options: string[] = []) => {
    const path = join(dir, name);
    await qemuImg(['convert', '-q', '-f', 'raw', '-O', fmt, ...options, raw, path]);
    return readFile(path);
  };
  const seed = (name: string, top: string, files: [string, Buffer][], interesting: number[], mend?: (f: MutableFile) => void): FormatSeed => ({
    name,
    format,
    top,
    files: new Map(files),
    interesting: interesting.filter((o) => o >= 0 && o < (files[0][1].length ?? 0)),
    mend,
  });

  if (format === 'vdi') {
    const interesting = (b: Buffer) => [...range(0x40, (0x1c8 - 0x40) / 4), ...range(0x200, 8)];
    const d = await convert('d.vdi', 'vdi');
    const s = await convert('s.vdi', 'vdi', ['-o', 'static=on']);
    return [seed('dynamic', 'd.vdi', [['d.vdi', d]], interesting(d)), seed('static', 's.vdi', [['s.vdi', s]], interesting(s))];
  }

  if (format === 'vpc') {
    const dynamic = await convert('d.vhd', 'vpc');
    const fixed = await convert('f.vhd', 'vpc', ['-o', 'subformat=fixed']);
    const child = vhdDifferencing(dynamic, { uniqueId: dynamic.subarray(68, 84), locators: [{ platform: 'W2ru', name: '.\\p.vhd' }], parentName: 'p.vhd' });
    const interesting = (b: Buffer) => {
      const d = Number(b.readBigUInt64BE(16));
      const t = Number(b.readBigUInt64BE(d + 16));
      return [...range(0, 22), ...range(b.length - 512, 22), ...range(d, 40), ...range(d + 576, 24), ...range(t, 4)];
    };
    const mend = (f: MutableFile) => {
      for (const at of [0, f.size - 512]) {
        if (at < 0) continue;
        const footer = Buffer.from(f.read(at, 512));
        if (footer.length < 512 || footer.toString('latin1', 0, 8) !== 'conectix') continue;
        footer.writeUInt32BE(footerChecksum(footer), 64);
        f.write(at + 64, footer.subarray(64, 68));
      }
    };
    return [
      seed('dynamic', 'd.vhd', [['d.vhd', dynamic]], interesting(dynamic), mend),
      seed('fixed', 'f.vhd', [['f.vhd', fixed]], range(fixed.length - 512, 22), mend),
      seed('differencing', 'c.vhd', [['c.vhd', child], ['p.vhd', dynamic]], interesting(child), mend),
    ];
  }

  if (format === 'vhdx') {
    const dynamic = await convert('d.vhdx', 'vhdx', ['-o', 'block_size=1M']);
    const fixed = await convert('f.vhdx', 'vhdx', ['-o', 'block_size=1M,subformat=fixed']);
    const layout = layoutOf(dynamic);
    const block0 = batEntry(dynamic, layout, 0).offset;
    const logged = withLog(
      dynamic,
      [{ slot: 0, bytes: logEntry({ sequence: 7n, tail: 0, logGuid: LOG_GUID, flushedFileOffset: dynamic.length, lastFileOffset: dynamic.length, descriptors: [{ kind: 'data', fileOffset: block0, sector: Buffer.alloc(4096, 0x42) }, { kind: 'zero', fileOffset: block0 + 8192, length: 4096 }] }) }],
      LOG_GUID,
    );
    const linkage = `{${guidString(layoutOf(fixed).dataWriteGuid)}}`;
    const child = vhdxDifferencing(dynamic, parentLocator([['parent_linkage', linkage], ['relative_path', 'p.vhdx']]), Buffer.alloc(MiB, 0x0f));
    setBatEntry(child, layout, 1, 7, batEntry(child, layout, 0).offset);
    const interesting = (b: Buffer) => {
      const l = layoutOf(b);
      return [...[64 * KiB, 128 * KiB].flatMap((h) => range(h, 20)), ...range(192 * KiB, 28), ...range(l.metadataOffset, 56), ...range(l.batOffset, 16), ...range(l.logOffset, 40)];
    };
    const mend = (f: MutableFile) => mendAll(f);
    return [
      seed('dynamic', 'd.vhdx', [['d.vhdx', dynamic]], interesting(dynamic), mend),
      seed('fixed', 'f.vhdx', [['f.vhdx', fixed]], interesting(fixed), mend),
      seed('log', 'l.vhdx', [['l.vhdx', logged]], interesting(logged), mend),
      seed('differencing', 'c.vhdx', [['c.vhdx', child], ['p.vhdx', fixed]], interesting(child), mend),
    ];
  }

  const sparse = await convert('s.vmdk', 'vmdk');
  const stream = await convert('o.vmdk', 'vmdk', ['-o', 'subformat=streamOptimized']);
  const split = await convert('t.vmdk', 'vmdk', ['-o', 'subformat=twoGbMaxExtentSparse']);
  const splitExtent = await readFile(join(dir, 't-s001.vmdk'));
  const flatDescriptor = Buffer.from(descriptorFile('monolithicFlat', ['RW 4096 FLAT "f.raw" 0', 'RW 2048 FLAT "f.raw" 2048']));
  const vmware = vmwareStreamOptimized(await readFile(raw), { grainSectors: 64 });
  const interesting = (b: Buffer) => {
    const o: number[] = [...range(0, 20), ...range(0x200, 18, 7)];
    if (b.toString('latin1', 0, 4) === 'KDMV') {
      const gdSector = b.readBigUInt64LE(56);
      const gd = gdSector === 0xffffffffffffffffn ? Number(b.readBigUInt64LE(b.length - 1024 + 56)) * 512 : Number(gdSector) * 512;
      if (gd + 64 <= b.length) {
        o.push(...range(gd, 4));
        const gt = b.readUInt32LE(gd) * 512;
        if (gt && gt + 64 <= b.length) for (let i = 0; i < 16; i++) o.push(gt + i * 4, b.readUInt32LE(gt + i * 4) * 512 + 8);
      }
      o.push(b.length - 1536 + 12, b.length - 1024 + 56);
    }
    return o;
  };
  return [
    seed('sparse', 's.vmdk', [['s.vmdk', sparse]], interesting(sparse)),
    seed('stream', 'o.vmdk', [['o.vmdk', stream]], interesting(stream)),
    seed('vmware-stream', 'w.vmdk', [['w.vmdk', vmware]], interesting(vmware)),
    seed('split', 't.vmdk', [['t.vmdk', split], ['t-s001.vmdk', splitExtent]], range(0, Math.ceil(split.length / 3), 3)),
    seed('flat', 'd.vmdk', [['d.vmdk', flatDescriptor], ['f.raw', Buffer.alloc(2 * MiB, 0x21)]], range(0, flatDescriptor.length, 1)),
  ];
}
