/**
 * vhdx: what qemu-img writes (dynamic and fixed, every block size, zero
 * block states on and off, another log size), then what only Hyper-V
 * writes, built to MS-VHDX: a log still to be replayed (QEMU refuses to
 * open it read-only; `qemu-img check -r all` on a copy replays it and is the
 * oracle), a 4 KiB logical sector size, and differencing disks (QEMU refuses
 * them; the oracle is built block by block from what qemu-img reads of the
 * parent and of the child's own blocks).
 */
import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { BackingRefusedError, describeImage, openImage, Qcow2Error } from '../../../src/index.ts';
import { guidString } from '../../../src/formats/common/guid.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { assertSameBytes, makeRaw, MiB, qemuImg, qemuIo } from '../../support/qemu.ts';
import { assertFormatMatchesQemu } from '../../support/formats.ts';
import { batEntry, layoutOf, LOG_GUID, logEntry, makeDifferencing, parentLocator, setBatEntry, withLog } from './build.ts';

const SIZE = 40 * MiB;

async function readAll(image: string, options = {}): Promise<Buffer> {
  const top = await openImage(image, options);
  try {
    return await top.read(0, top.size);
  } finally {
    await top.close();
  }
}

describe('vhdx: our bytes, info and extents agree with qemu-img', function () {
  this.timeout(300_000);
  let dir: string;
  let source: string;

  before(async () => {
    dir = scratchDir('vhdx');
    source = join(dir, 'source.raw');
    await makeRaw(source, SIZE, [[0, 3 * MiB], [9 * MiB + 4321, 5 * MiB], [SIZE - MiB, MiB]], 41);
  });

  const check = (image: string) => assertFormatMatchesQemu(image, { format: 'vhdx', files: [image], preciseMap: false });

  for (const options of ['', 'subformat=fixed', 'block_size=1M', 'block_size=32M', 'block_size=256M', 'block_state_zero=off', 'subformat=fixed,block_state_zero=off', 'log_size=3M']) {
    it(`qemu-img convert -O vhdx ${options ? `-o ${options}` : '(dynamic, defaults)'}`, async () => {
      const image = join(dir, `c-${options.replace(/[^a-z0-9]/gi, '_') || 'default'}.vhdx`);
      await qemuImg(['convert', '-q', '-O', 'vhdx', ...(options ? ['-o', options] : []), source, image]);
      await check(image);
    });
  }

  it('writes through qemu-io (BAT updates go through the log, which QEMU flushes)', async () => {
    const image = join(dir, 'written.vhdx');
    await qemuImg(['convert', '-q', '-O', 'vhdx', '-o', 'block_size=1M', source, image]);
    await qemuIo(image, ['write -P 0x61 20M 3M', 'write -P 0x62 1234567 4096', 'write -z 9M 1M'], 'vhdx');
    await check(image);
  });

  it('a 4 KiB logical sector size (Hyper-V 4Kn disks): the same bytes, the size the metadata says', async () => {
    const plain = join(dir, 'lss512.vhdx');
    await qemuImg(['convert', '-q', '-O', 'vhdx', '-o', 'block_size=1M', source, plain]);
    const bytes = await readFile(plain);
    const md = layoutOf(bytes).metadataOffset;
    const count = bytes.readUInt16LE(md + 10);
    for (let i = 0; i < count; i++) {
      const p = md + 32 + i * 32;
      if (guidString(bytes, p) === '8141bf1d-a96f-4709-ba47-f233a8faab5f') bytes.writeUInt32LE(4096, md + bytes.readUInt32LE(p + 16));
    }
    const image = join(dir, 'lss4096.vhdx');
    await writeFile(image, bytes);
    const ref = join(dir, 'lss.raw');
    await qemuImg(['convert', '-q', '-f', 'vhdx', '-O', 'raw', plain, ref]);
    const top = await openImage(image);
    try {
      assert.equal(describeImage(top)[0]['format-details']?.['logical sector size'], 4096);
      await assertSameBytes(top, ref, image);
    } finally {
      await top.close();
    }
  });
});

describe('vhdx: a log that must be replayed, replayed in memory', function () {
  this.timeout(300_000);
  let dir: string;
  let base: Buffer;

  before(async () => {
    dir = scratchDir('vhdx-log');
    const source = join(dir, 'source.raw');
    await makeRaw(source, 16 * MiB, [[0, 4 * MiB], [8 * MiB, 2 * MiB]], 42);
    const plain = join(dir, 'plain.vhdx');
    await qemuImg(['convert', '-q', '-O', 'vhdx', '-o', 'block_size=1M', source, plain]);
    base = await readFile(plain);
  });

  /** Two entries (a data sector over block 0, zeros over part of it, the BAT sector turning block 1 to ZERO; then a second entry), and a stale older one. */
  function loggedImage(): Buffer {
    const layout = layoutOf(base);
    const block0 = batEntry(base, layout, 0).offset;
    const sector = Buffer.alloc(4096, 0xab);
    sector.write('replayed sector', 100, 'latin1');
    const bat = Buffer.from(base.subarray(layout.batOffset, layout.batOffset + 4096));
    bat.writeBigUInt64LE(2n, 8);
    const first = logEntry({
      sequence: 1000n,
      tail: 0,
      logGuid: LOG_GUID,
      flushedFileOffset: base.length,
      lastFileOffset: base.length + 2 * MiB + 1,
      descriptors: [
        { kind: 'data', fileOffset: block0 + 4096, sector },
        { kind: 'zero', fileOffset: block0 + 65536, length: 8192 },
        { kind: 'data', fileOffset: layout.batOffset, sector: bat },
      ],
    });
    const second = logEntry({
      sequence: 1001n,
      tail: 0,
      logGuid: LOG_GUID,
      flushedFileOffset: base.length,
      lastFileOffset: base.length,
      descriptors: [{ kind: 'data', fileOffset: block0 + 3 * 65536, sector: Buffer.alloc(4096, 0x5c) }],
    });
    const stale = logEntry({ sequence: 900n, tail: 512 * 1024, logGuid: LOG_GUID, flushedFileOffset: base.length, lastFileOffset: base.length, descriptors: [{ kind: 'zero', fileOffset: block0, length: 4096 }] });
    return withLog(base, [{ slot: 0, bytes: first }, { slot: first.length, bytes: second }, { slot: 512 * 1024, bytes: stale }], LOG_GUID);
  }

  it('reads what qemu-img check -r all (which replays the log into a copy) leaves; the image itself is not changed', async () => {
    const image = join(dir, 'logged.vhdx');
    await writeFile(image, loggedImage());
    // QEMU will not open it read-only: the log needs replaying.
    const info = await execa('qemu-img', ['info', image], { reject: false });
    assert.notEqual(info.exitCode, 0);
    assert.match(info.stderr, /log that needs to be replayed/);
    const copy = join(dir, 'replayed.vhdx');
    await copyFile(image, copy);
    await execa('qemu-img', ['check', '-r', 'all', copy], { reject: false });
    const ref = join(dir, 'replayed.raw');
    await qemuImg(['convert', '-q', '-f', 'vhdx', '-O', 'raw', copy, ref]);
    await guardImages([image], async () => {
      const top = await openImage(image);
      try {
        await assertSameBytes(top, ref, image);
        assert.match(String(describeImage(top)[0]['format-details']?.log), /replayed in memory \(2 entries/);
      } finally {
        await top.close();
      }
    });
  });

  it('a log whose active sequence is broken (the head cannot be reached from its tail) is refused by name', async () => {
    const bytes = loggedImage();
    const layout = layoutOf(bytes);
    // The second entry now claims its sequence starts at a slot holding no entry.
    const at = layout.logOffset + 4096 * 3;
    bytes.writeUInt32LE(256 * 1024, at + 12);
    const { vhdxChecksum } = await import('../../../src/formats/vhdx/header.ts');
    const entry = bytes.subarray(at, at + bytes.readUInt32LE(at + 8));
    entry.writeUInt32LE(vhdxChecksum(entry), 4);
    const image = join(dir, 'broken-log.vhdx');
    await writeFile(image, bytes);
    await assert.rejects(readAll(image), (err: Error) => err instanceof Qcow2Error && /active sequence is broken/.test(err.message));
  });
});

describe('vhdx: differencing disks through their parent locator', function () {
  this.timeout(300_000);
  let dir: string;
  let parent: string;
  let parentBytes: Buffer;
  let childPlain: Buffer;
  let childBytes: Buffer;
  const blockSize = MiB;

  before(async () => {
    dir = scratchDir('vhdx-diff');
    const parentRaw = join(dir, 'parent.raw');
    const childRaw = join(dir, 'child.raw');
    await makeRaw(parentRaw, 8 * MiB, [[0, 8 * MiB]], 51);
    await makeRaw(childRaw, 8 * MiB, [[0, 4 * MiB]], 52);
    parent = join(dir, 'parent.vhdx');
    await qemuImg(['convert', '-q', '-O', 'vhdx', '-o', 'block_size=1M', parentRaw, parent]);
    const plain = join(dir, 'child-plain.vhdx');
    await qemuImg(['convert', '-q', '-O', 'vhdx', '-o', 'block_size=1M', childRaw, plain]);
    childPlain = await readFile(plain);
    parentBytes = await readFile(parentRaw);
    childBytes = await readFile(childRaw);
  });

  /**
   * Block 0 the child's, block 1 partially present (every other run of 8
   * sectors the child's), block 2 not present (the parent's), block 3 zero,
   * blocks 4-7 not present.
   */
  function child(linkage: string, relativePath = '.\\parent.vhdx'): { image: Buffer; expected: Buffer } {
    const layout = layoutOf(childPlain);
    const bitmap = Buffer.alloc(MiB);
    const sectorsPerBlock = blockSize / 512;
    const present = (s: number) => Math.floor(s / 8) % 2 === 0;
    for (let s = 0; s < sectorsPerBlock; s++) if (present(s)) bitmap[(sectorsPerBlock + s) >> 3] |= 1 << ((sectorsPerBlock + s) & 7);
    const image = makeDifferencing(childPlain, parentLocator([['parent_linkage', linkage], ['relative_path', relativePath], ['absolute_win32_path', 'C:\\vms\\parent.vhdx']]), bitmap);
    const b1 = batEntry(image, layout, 1);
    setBatEntry(image, layout, 1, 7, b1.offset);
    setBatEntry(image, layout, 2, 0);
    setBatEntry(image, layout, 3, 2);
    // qemu-img leaves unwritten blocks ZERO (block_state_zero=on); in a differencing disk they must be not present to show the parent.
    for (let b = 4; b < 8; b++) setBatEntry(image, layout, b, 0);
    const expected = Buffer.from(parentBytes);
    childBytes.copy(expected, 0, 0, blockSize);
    for (let s = 0; s < sectorsPerBlock; s++) if (present(s)) childBytes.copy(expected, blockSize + s * 512, blockSize + s * 512, blockSize + (s + 1) * 512);
    expected.fill(0, 3 * blockSize, 4 * blockSize);
    return { image, expected };
  }

  const parentLinkage = async () => `{${guidString(layoutOf(await readFile(parent)).dataWriteGuid).toUpperCase()}}`;

  it('reads the child over its parent, block state by block state and sector by sector; image info names the parent', async () => {
    const { image, expected } = child(await parentLinkage());
    const path = join(dir, 'child.vhdx');
    await writeFile(path, image);
    await guardImages([path, parent], async () => {
      const got = await readAll(path);
      for (let b = 0; b < 8; b++) {
        const a = got.subarray(b * blockSize, (b + 1) * blockSize);
        const e = expected.subarray(b * blockSize, (b + 1) * blockSize);
        let i = 0;
        while (i < a.length && a[i] === e[i]) i++;
        assert.ok(a.equals(e), `block ${b} differs from byte ${i}: ours ${a[i]} expected ${e[i]}; parent ${parentBytes[b * blockSize + i]} child ${childBytes[b * blockSize + i]}`);
      }
      const top = await openImage(path);
      try {
        const info = describeImage(top);
        assert.equal(info.length, 2);
        assert.equal(info[0]['backing-filename'], '.\\parent.vhdx');
        assert.equal(info[0]['full-backing-filename'], parent);
        assert.equal(info[0]['format-details']?.subformat, 'differencing');
        // Block 3 is zero in the child whatever the parent has; block 2 shows the parent's data.
        assert.deepEqual(await top.extent(3 * blockSize, blockSize), { offset: 3 * blockSize, length: blockSize, kind: 'zero' });
        assert.equal((await top.extent(2 * blockSize, blockSize)).kind, 'data');
      } finally {
        await top.close();
      }
    });
  });

  it('a parent whose DataWriteGuid is not the linkage the child records is refused', async () => {
    const path = join(dir, 'child-stale.vhdx');
    await writeFile(path, child('{00000000-1111-2222-3333-444444444444}').image);
    await assert.rejects(readAll(path), (err: Error) => err instanceof Qcow2Error && /DataWriteGuid .* is not the 00000000-1111/.test(err.message));
  });

  it('--backing same-dir refuses a relative path that climbs out; an unusable locator is named', async () => {
    const path = join(dir, 'child-escape.vhdx');
    await writeFile(path, child(await parentLinkage(), '..\\..\\etc\\shadow').image);
    await assert.rejects(readAll(path, { backingPolicy: 'same-dir' }), (err: Error) => err instanceof BackingRefusedError && err.message.includes('/etc/shadow'));
    const windows = join(dir, 'child-windows.vhdx');
    await writeFile(windows, child(await parentLinkage(), 'D:\\parent.vhdx').image);
    await assert.rejects(readAll(windows), /parent cannot be located here/);
  });
});
