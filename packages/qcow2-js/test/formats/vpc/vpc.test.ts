/**
 * vpc (VHD): what qemu-img writes (dynamic, fixed, force_size), and what
 * only other hypervisors write, built to the specification: Virtual PC's
 * CHS-sized disks, Hyper-V's and Disk2vhd's current_size disks, the maximum
 * geometry; bytes, image info (with the size rule named) and extents agree
 * with qemu-img. Then differencing disks, which QEMU reads as if they had no
 * parent: guestlens follows the parent locators, so the oracle is built
 * sector by sector from qemu-img's reading of the child alone and of the
 * parent.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BackingRefusedError, describeImage, openImage, Qcow2Error } from '../../../src/index.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { makeRaw, MiB, qemuImg, qemuIo } from '../../support/qemu.ts';
import { assertFormatMatchesQemu } from '../../support/formats.ts';
import { blockSectors, editFooter, makeDifferencing, setBitmap, setCreator, setCurrentSize, setGeometry } from './build.ts';

const SIZE = 24 * MiB;

describe('vpc: our bytes, info and extents agree with qemu-img', function () {
  this.timeout(300_000);
  let dir: string;
  let source: string;

  before(async () => {
    dir = scratchDir('vpc');
    source = join(dir, 'source.raw');
    await makeRaw(source, SIZE, [[0, 3 * MiB], [5 * MiB + 4321, 2 * MiB], [SIZE - MiB, MiB]], 21);
  });

  async function check(image: string, rule?: RegExp): Promise<void> {
    await assertFormatMatchesQemu(image, { format: 'vpc', files: [image] });
    if (rule) {
      const top = await openImage(image, { format: 'vpc' });
      try {
        assert.match(String(describeImage(top)[0]['format-details']?.['size rule']), rule);
      } finally {
        await top.close();
      }
    }
  }

  async function converted(name: string, options: string[]): Promise<string> {
    const image = join(dir, name);
    await qemuImg(['convert', '-q', '-O', 'vpc', ...options, source, image]);
    return image;
  }

  it('dynamic (the default), then writes and zero writes', async () => {
    const image = await converted('dynamic.vhd', []);
    await qemuIo(image, ['write -P 0x31 9M 100k', 'write -z 1M 64k', 'write -P 0x32 12345 678'], 'vpc');
    await check(image, /CHS geometry .*creator "qemu"/);
  });

  it('fixed (-o subformat=fixed): the file is the disk, the footer last', async () => {
    await check(await converted('fixed.vhd', ['-o', 'subformat=fixed']), /CHS geometry/);
  });

  it('-o force_size=on, dynamic and fixed: the size is current_size (creator "qem2")', async () => {
    await check(await converted('force.vhd', ['-o', 'force_size=on']), /current size \(creator "qem2"\)/);
    await check(await converted('force-fixed.vhd', ['-o', 'subformat=fixed,force_size=on']), /current size \(creator "qem2"\)/);
  });

  it("Virtual PC's own (creator \"vpc \", a current_size larger than the geometry): sized by CHS", async () => {
    const image = join(dir, 'virtualpc.vhd');
    const base = await readFile(await converted('vpc-base.vhd', []));
    await writeFile(image, editFooter(base, (f) => {
      setCreator(f, 'vpc ');
      setCurrentSize(f, SIZE + 3 * 1024 * 1024);
    }));
    await check(image, /CHS geometry .*creator "vpc "/);
  });

  for (const [app, who] of [['win ', 'Hyper-V'], ['d2v ', 'Disk2vhd'], ['tap\0', 'XenServer'], ['CTXS', 'XenConverter']]) {
    it(`creator ${JSON.stringify(app)} (${who}): sized by current_size, not by the geometry`, async () => {
      const tag = app.replace(/[^a-z0-9]/gi, '');
      const image = join(dir, `creator-${tag}.vhd`);
      const base = await readFile(await converted(`base-${tag}.vhd`, []));
      await writeFile(image, editFooter(base, (f) => {
        setCreator(f, app);
        setCurrentSize(f, SIZE - 3 * 512);
      }));
      await check(image, /current size \(creator/);
    });
  }

  it('the maximum CHS geometry means "the size is current_size", whatever the creator', async () => {
    const image = join(dir, 'maxgeometry.vhd');
    const base = await readFile(await converted('max-base.vhd', []));
    await writeFile(image, editFooter(base, (f) => {
      setGeometry(f, 65535, 16, 255);
      setCurrentSize(f, SIZE);
    }));
    await check(image, /CHS maximum/);
  });

  it('a fixed Hyper-V disk (creator "win ", whole MiBs, as Azure wants them)', async () => {
    const image = join(dir, 'azure.vhd');
    const raw = await readFile(source);
    const footer = (await readFile(await converted('azure-base.vhd', ['-o', 'subformat=fixed,force_size=on']))).subarray(-512);
    await writeFile(image, editFooter(Buffer.concat([raw, footer]), (f) => setCreator(f, 'win ')));
    await check(image, /creator "win "/);
  });
});

describe('vpc: differencing disks through their parent locators', function () {
  this.timeout(300_000);
  let dir: string;
  let parentRaw: string;
  let childRaw: string;
  let parent: string;
  let parentId: Buffer;
  let childDynamic: Buffer;
  let expected: Buffer;

  before(async () => {
    dir = scratchDir('vpc-diff');
    parentRaw = join(dir, 'parent.raw');
    childRaw = join(dir, 'child.raw');
    await makeRaw(parentRaw, SIZE, [[0, SIZE]], 31);
    await makeRaw(childRaw, SIZE, [[2 * MiB, 2 * MiB], [9 * MiB + 512 * 7, 700_000]], 32);
    parent = join(dir, 'parent.vhd');
    await qemuImg(['convert', '-q', '-O', 'vpc', parentRaw, parent]);
    parentId = (await readFile(parent)).subarray(68, 84);
    const childPlain = join(dir, 'child-plain.vhd');
    await qemuImg(['convert', '-q', '-O', 'vpc', childRaw, childPlain]);
    childDynamic = await readFile(childPlain);
    // Half the sectors of the first allocated block come from the parent.
    const blocks = blockSectors(childDynamic);
    const first = blocks.find((b) => b !== undefined) as number;
    setBitmap(childDynamic, first, 4096, (s) => s % 3 !== 0);
    // What the guest sees: the child's sector where its bitmap says so, the parent's elsewhere.
    const childBytes = await qemuRaw(childPlain, join(dir, 'child-qemu.raw'), childDynamic);
    const parentBytes = await qemuRaw(parent, join(dir, 'parent-qemu.raw'));
    expected = Buffer.from(parentBytes);
    blocks.forEach((b, i) => {
      if (b === undefined) return;
      for (let s = 0; s < 4096; s++) {
        const bit = childDynamic[b * 512 + (s >> 3)] & (0x80 >> (s & 7));
        const at = i * 2 * MiB + s * 512;
        if (bit && at < expected.length) childBytes.copy(expected, at, at, at + 512);
      }
    });
  });

  /** What qemu-img reads of `image` (optionally of other bytes for the same file). */
  async function qemuRaw(image: string, out: string, bytes?: Buffer): Promise<Buffer> {
    if (bytes) await writeFile(image, bytes);
    await qemuImg(['convert', '-q', '-f', 'vpc', '-O', 'raw', image, out]);
    return readFile(out);
  }

  async function child(name: string, locators: { platform: 'W2ru' | 'W2ku' | 'MacX'; name: string }[], uniqueId = parentId, at = dir): Promise<string> {
    const path = join(at, name);
    await writeFile(path, makeDifferencing(childDynamic, { uniqueId, locators, parentName: 'parent.vhd' }));
    return path;
  }

  async function readAll(image: string, options = {}): Promise<Buffer> {
    const top = await openImage(image, options);
    try {
      return await top.read(0, top.size);
    } finally {
      await top.close();
    }
  }

  it('a relative locator (W2ru, ".\\parent.vhd"): the child over its parent, sector by sector; image info names the parent', async () => {
    const image = await child('child-w2ru.vhd', [{ platform: 'W2ku', name: 'C:\\vms\\parent.vhd' }, { platform: 'W2ru', name: '.\\parent.vhd' }]);
    await guardImages([image, parent], async () => {
      assert.ok((await readAll(image)).equals(expected), 'bytes');
      const top = await openImage(image);
      try {
        const info = describeImage(top);
        assert.equal(info.length, 2);
        assert.equal(info[0]['backing-filename'], '.\\parent.vhd');
        assert.equal(info[0]['full-backing-filename'], parent);
        assert.equal(info[0]['format-details']?.subformat, 'differencing');
        assert.equal(info[1].filename, parent);
        // Extents: the parent's data shows through where the child has none.
        const e = await top.extent(0, MiB);
        assert.equal(e.kind, 'data');
      } finally {
        await top.close();
      }
    });
  });

  it('an absolute POSIX path in W2ku, and a MacX file URL', async () => {
    assert.ok((await readAll(await child('child-w2ku.vhd', [{ platform: 'W2ku', name: parent }]))).equals(expected));
    assert.ok((await readAll(await child('child-macx.vhd', [{ platform: 'MacX', name: `file://localhost${parent}` }]))).equals(expected));
  });

  it('a parent whose unique id is not the one the child was made from is refused, naming both', async () => {
    const image = await child('child-stranger.vhd', [{ platform: 'W2ru', name: '.\\parent.vhd' }], Buffer.alloc(16, 7));
    await assert.rejects(readAll(image), (err: Error) => err instanceof Qcow2Error && /unique id .* is not the 07070707/.test(err.message));
  });

  it('a parent named only by a Windows drive path cannot be located: refused, the stored names quoted', async () => {
    const image = await child('child-windows.vhd', [{ platform: 'W2ku', name: 'D:\\images\\parent.vhd' }]);
    await assert.rejects(readAll(image), /cannot be located here: its locators say W2ku "D:\\\\images\\\\parent\.vhd"/);
  });

  it('--backing same-dir refuses a locator that climbs out of the directory; none refuses any parent', async () => {
    const inner = join(dir, 'inner');
    await mkdir(inner, { recursive: true });
    const image = await child('child-out.vhd', [{ platform: 'W2ru', name: '..\\parent.vhd' }], parentId, inner);
    assert.ok((await readAll(image)).equals(expected), 'allow follows it');
    await assert.rejects(readAll(image, { backingPolicy: 'same-dir' }), (err: Error) => err instanceof BackingRefusedError && err.message.includes(parent));
    await assert.rejects(readAll(await child('child-none.vhd', [{ platform: 'W2ru', name: '.\\parent.vhd' }]), { backingPolicy: 'none' }), BackingRefusedError);
  });
});
