/**
 * Byte-for-byte against Debian's virt-df on the same images: scripts parse
 * virt-df's text and CSV, so ours must be identical. libguestfs boots an
 * appliance under TCG here (~20-40 s a call), so this is one call, CSV (its
 * quoting of a long, comma-bearing name), over one two-disk guest; the text
 * layout is compared on the LVM, NTFS and btrfs guests (df-*.test.ts).
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { join } from 'node:path';
import { renameSync } from 'node:fs';
import { buildDisk, haveTool, toQcow2 } from './support/guestDisk.ts';
import { guardImages } from './support/imageGuard.ts';
import { guestlens } from './support/run.ts';

const tcg = { LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' };

describe('guestlens df against virt-df', function () {
  this.timeout(600000);
  let disks: string[];

  before(async function () {
    if (!(await haveTool('virt-df'))) {
      console.log('      virt-df is not installed (Debian package libguestfs-tools; scripts/install-deps.sh installs it): cannot compare');
      this.skip();
    }
    const files = { 'etc/hostname': 'cmp\n', 'srv/data': Buffer.alloc(1500 * 1024, 3) };
    const first = await buildDisk('first', 'gpt', [
      { sizeMiB: 20, content: { mkfs: 'mkfs.ext2', args: ['-q', '-F', '-b', '1024'], files } },
      { sizeMiB: 60, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F'], files } },
      { sizeMiB: 8, content: { swap: true } },
    ]);
    const second = await buildDisk('second', 'dos', [
      { sizeMiB: 24, content: { mkfs: 'mkfs.ext3', args: ['-q', '-F'], files } },
      { sizeMiB: 40, logical: true, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-O', '^64bit'], files } },
    ]);
    const long = join(first.raw, '..', 'a guest, whose image name is long.qcow2');
    renameSync(await toQcow2(first.raw), long);
    disks = [long, await toQcow2(second.raw)];
  });

  for (const flags of [['--csv']]) {
    it(`prints exactly what virt-df ${flags.join(' ')} prints for a two-disk guest`.replace('  ', ' '), async () => {
      const add = disks.flatMap((d) => ['-a', d]);
      const theirs = await execa('virt-df', [...flags, ...add], { env: tcg, reject: false });
      assert.equal(theirs.exitCode, 0, `virt-df failed: ${theirs.stderr}`);
      const ours = await guardImages(disks, () => guestlens(['df', ...flags, ...add]));
      assert.equal(ours.exitCode, 0, ours.stderr);
      assert.equal(ours.stdout, `${theirs.stdout}\n`);
    });
  }
});
