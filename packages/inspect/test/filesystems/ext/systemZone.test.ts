/**
 * The kernel's system-zone check at mount, against the kernel: metadata
 * ranges that overlap (a superblock copy, descriptor and reserved-GDT
 * blocks running into a bitmap) make it refuse the mount with EFSCORRUPTED;
 * statfs must then say inexact with that reason, and stay exact where the
 * kernel mounts. Each edit is made by debugfs on a fresh mke2fs image.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { RawFileSource } from '@guestlens/qcow2-js';
import { ExtFilesystem } from '../../../src/filesystems/ext/index.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { sh } from '../../../../../test/support/run.ts';
import { loopMountUnavailable, mountImage, unmountAll } from '../../../../../test/support/kernel.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';

/** 16 MiB, 1 KiB blocks: group 0's block bitmap sits right after 127 reserved GDT blocks (block 130). */
const CASES: { edit: string; kernelRefuses: boolean }[] = [
  { edit: 'ssv first_data_block 5', kernelRefuses: true },
  { edit: 'ssv reserved_gdt_blocks 128', kernelRefuses: true },
  { edit: 'ssv reserved_gdt_blocks 127', kernelRefuses: false },
  { edit: 'set_bg 1 inode_bitmap 131', kernelRefuses: true }, // group 1's block bitmap
];

async function kernelMounts(image: string): Promise<boolean> {
  try {
    const m = await mountImage(image, { copy: true });
    await m.unmount();
    return true;
  } catch {
    return false;
  }
}

describe('ext driver: the kernel\'s system-zone check (overlapping metadata)', function () {
  this.timeout(120_000);
  afterEach(unmountAll);

  for (const c of CASES) {
    it(`${c.edit}: ${c.kernelRefuses ? 'the kernel refuses it, statfs says inexact with the reason' : 'the kernel mounts it, statfs stays exact'}`, async function () {
      const image = join(scratchDir('ext-system-zone'), 'zone.img');
      await sh('truncate', ['-s', '16M', image]);
      await sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '1024', image]);
      await sh('debugfs', ['-w', '-R', c.edit, image]);
      const noLoop = await loopMountUnavailable();
      if (noLoop) console.log(`      the kernel cannot be asked (${noLoop}): checked against the expectation only`);
      else assert.equal(!(await kernelMounts(image)), c.kernelRefuses, 'the kernel disagrees with this case\'s expectation');
      await guardImages([image], async () => {
        const src = await RawFileSource.open(image);
        try {
          const st = await (await ExtFilesystem.open(src)).statfs();
          if (c.kernelRefuses) {
            assert.equal(st.exact, false);
            assert.match(st.reason ?? '', /failed to initialize system zone \(-117\): .* overlaps /);
          } else assert.equal(st.exact, true, st.reason);
        } finally {
          await src.close();
        }
      });
    });
  }
});
