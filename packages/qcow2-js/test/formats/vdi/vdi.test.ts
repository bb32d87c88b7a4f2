/**
 * vdi: images qemu-img writes (dynamic, static), then written out of order,
 * plus what only VirtualBox writes (its own header text, an odd disk size
 * that QEMU rounds up, discarded blocks): bytes, image info and extents
 * agree with qemu-img.
 */
import { join } from 'node:path';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { makeRaw, MiB, qemuImg, qemuIo, writeBytes } from '../../support/qemu.ts';
import { assertFormatMatchesQemu } from '../../support/formats.ts';

const SIZE = 24 * MiB;

describe('vdi: our bytes, info and extents agree with qemu-img', function () {
  this.timeout(300_000);
  let dir: string;
  let source: string;

  before(async () => {
    dir = scratchDir('vdi');
    source = join(dir, 'source.raw');
    await makeRaw(source, SIZE, [[0, 3 * MiB], [5 * MiB + 4321, 2 * MiB], [SIZE - MiB, MiB]], 11);
  });

  const check = (image: string) => assertFormatMatchesQemu(image, { format: 'vdi', files: [image] });

  it('dynamic (qemu-img convert -O vdi), then writes in reverse order of blocks and zero writes', async () => {
    const image = join(dir, 'dynamic.vdi');
    await qemuImg(['convert', '-q', '-O', 'vdi', source, image]);
    await qemuIo(image, ['write -P 0x71 20M 100k', 'write -P 0x72 15M 1000', 'write -z 9M 1M', 'write -P 0x73 1234567 5000'], 'vdi');
    await check(image);
  });

  it('static (-o static=on): every block allocated in order', async () => {
    const image = join(dir, 'static.vdi');
    await qemuImg(['convert', '-q', '-O', 'vdi', '-o', 'static=on', source, image]);
    await qemuIo(image, ['write -P 0x74 7M 2M'], 'vdi');
    await check(image);
  });

  it('an empty dynamic image (qemu-img create)', async () => {
    const image = join(dir, 'empty.vdi');
    await qemuImg(['create', '-q', '-f', 'vdi', image, '100M']);
    await check(image);
  });

  it("VirtualBox's own: its header text, an odd disk size (rounded up to a sector, as QEMU does) and a discarded block", async () => {
    const image = join(dir, 'vbox.vdi');
    await qemuImg(['convert', '-q', '-O', 'vdi', source, image]);
    await writeBytes(image, 0, Buffer.from('<<< Oracle VM VirtualBox Disk Image >>>\n\0', 'latin1'));
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(SIZE - 1000));
    await writeBytes(image, 0x170, size);
    // Block 1 (allocated by the conversion) discarded: it reads as zeros.
    await writeBytes(image, 0x200 + 4, Buffer.from([0xfe, 0xff, 0xff, 0xff]));
    await check(image);
  });
});
