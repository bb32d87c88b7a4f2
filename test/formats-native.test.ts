/**
 * One guest (GPT: an ext2 /boot, an ext4 root with files), stored in every
 * format guestlens reads natively: the same answers as through qcow2, for
 * df (the CLI, through the overlay QEMU reads, and the library without it),
 * directory listings and file contents (the guest API), and the bytes
 * (`guestlens image cat`, byte for byte what `qemu-img convert -O raw`
 * writes; `image info` says the format and size qemu-img says). A
 * differencing VHD, whose parent QEMU ignores, is read without an overlay
 * and still answers as its flattened copy does.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { guestDf, openGuest, type Guest } from '@guestlens/inspect';
import { buildDisk, toQcow2 } from './support/guestDisk.ts';
import { guardImages, sha256File } from './support/imageGuard.ts';
import { guestlens, repoRoot, sh } from './support/run.ts';
import { scratchDir } from './support/scratch.ts';
import { makeDifferencing } from '../packages/qcow2-js/test/formats/vpc/build.ts';

const files = {
  'etc/hostname': 'formats\n',
  'etc/os-release': 'ID=test\n',
  'var/log/messages': 'line of a log\n'.repeat(3000),
  'home/u/blob': Buffer.alloc(900 * 1024, 9),
  'home/u/notes.txt': 'some notes\n',
};

interface Variant {
  label: string;
  format: string;
  options: string[];
  ext: string;
  /** Files the image is made of besides the one named (split and flat extents). */
  extra?: string[];
}

const VARIANTS: Variant[] = [
  { label: 'vmdk monolithicSparse', format: 'vmdk', options: [], ext: 'vmdk' },
  { label: 'vmdk streamOptimized', format: 'vmdk', options: ['-o', 'subformat=streamOptimized'], ext: 'vmdk' },
  { label: 'vmdk twoGbMaxExtentSparse', format: 'vmdk', options: ['-o', 'subformat=twoGbMaxExtentSparse'], ext: 'vmdk', extra: ['-s001.vmdk'] },
  { label: 'vmdk monolithicFlat', format: 'vmdk', options: ['-o', 'subformat=monolithicFlat'], ext: 'vmdk', extra: ['-flat.vmdk'] },
  { label: 'vdi dynamic', format: 'vdi', options: [], ext: 'vdi' },
  { label: 'vdi static', format: 'vdi', options: ['-o', 'static=on'], ext: 'vdi' },
  { label: 'vhdx dynamic', format: 'vhdx', options: [], ext: 'vhdx' },
  { label: 'vhdx fixed, 1 MiB blocks', format: 'vhdx', options: ['-o', 'subformat=fixed,block_size=1M'], ext: 'vhdx' },
  { label: 'vpc dynamic', format: 'vpc', options: [], ext: 'vhd' },
  { label: 'vpc fixed', format: 'vpc', options: ['-o', 'subformat=fixed'], ext: 'vhd' },
];

/** df rows without the guest's name (which is the image's file name). */
function rows(json: string): unknown[] {
  return (JSON.parse(json) as Record<string, unknown>[]).map(({ guest: _guest, ...row }) => row);
}

/** What the guest API says of a guest: every filesystem's statfs, a directory listing, file contents. */
async function guestView(guest: Guest): Promise<unknown> {
  const df = await guestDf(guest);
  const view: Record<string, unknown> = { df: df.rows.map((r) => ({ ...r, warnings: r.warnings.length })), problems: df.problems.length };
  for (const info of await guest.filesystems()) {
    const fs = await info.open();
    const names = async (path: string) => (await fs.readdir(path)).map((e) => e.name).sort();
    view[info.device] = { root: await names('/') };
    if ((await names('/')).includes('etc')) {
      view[`${info.device}:files`] = {
        home: await names('/home/u'),
        hostname: (await fs.readFile('/etc/hostname')).toString(),
        messages: createHash('sha256').update(await fs.readFile('/var/log/messages')).digest('hex'),
        blob: createHash('sha256').update(await fs.readFile('/home/u/blob')).digest('hex'),
      };
    }
  }
  return view;
}

describe('every native format answers as qcow2 does: df, listings, file contents, bytes', function () {
  this.timeout(600_000);
  let dir: string;
  let qcow2: string;
  let expectedDf: unknown[];
  let expectedView: unknown;

  before(async () => {
    dir = scratchDir('formats-native');
    const disk = await buildDisk('formats', 'gpt', [
      { sizeMiB: 16, content: { mkfs: 'mkfs.ext2', args: ['-q', '-F', '-L', 'boot', '-b', '1024'], files: { vmlinuz: Buffer.alloc(200_000, 1) } } },
      { sizeMiB: 48, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'root'], files } },
    ]);
    qcow2 = await toQcow2(disk.raw, join(dir, 'guest.qcow2'));
    const r = await guestlens(['df', '--json', qcow2]);
    assert.equal(r.exitCode, 0, r.stderr);
    expectedDf = rows(r.stdout);
    const guest = await openGuest([qcow2], { overlay: false });
    try {
      expectedView = await guestView(guest);
      assert.ok(Object.keys(expectedView as object).some((k) => k.endsWith(':files')), 'the root filesystem is read');
    } finally {
      await guest.close();
    }
  });

  for (const v of VARIANTS) {
    it(v.label, async () => {
      const image = join(dir, `guest-${v.label.replace(/[^a-z0-9]+/gi, '-')}.${v.ext}`);
      await sh('qemu-img', ['convert', '-q', '-f', 'qcow2', '-O', v.format, ...v.options, qcow2, image]);
      const parts = [image, ...(v.extra ?? []).map((suffix) => image.replace(/\.vmdk$/, suffix))];
      await guardImages(parts, async () => {
        // df through the CLI: the overlay, which QEMU reads, over the image.
        const df = await guestlens(['df', '--json', image]);
        assert.equal(df.exitCode, 0, df.stderr);
        assert.deepEqual(rows(df.stdout), expectedDf, 'df through the overlay');
        // The guest API without an overlay: guestlens's own reader.
        const guest = await openGuest([{ path: image, format: v.format }], { overlay: false });
        try {
          assert.deepEqual(await guestView(guest), expectedView, 'guest API without the overlay');
        } finally {
          await guest.close();
        }
        // The bytes and what image info says.
        const ref = join(dir, 'ref.raw');
        await sh('qemu-img', ['convert', '-q', '-f', v.format, '-O', 'raw', image, ref]);
        const out = join(dir, 'cat.raw');
        await execa('sh', ['-c', `"${join(repoRoot, 'cli', 'bin', 'guestlens')}" image cat --format ${v.format} "${image}" > "${out}"`]);
        assert.equal(await sha256File(out), await sha256File(ref), 'image cat is byte-identical to qemu-img convert -O raw');
        const info = await guestlens(['image', 'info', '--json', '--format', v.format, image]);
        assert.equal(info.exitCode, 0, info.stderr);
        const ours = JSON.parse(info.stdout) as { format: string; 'virtual-size': number }[];
        const theirs = JSON.parse(await sh('qemu-img', ['info', '--output=json', '-f', v.format, image])) as { format: string; 'virtual-size': number };
        assert.deepEqual({ format: ours[0].format, size: ours[0]['virtual-size'] }, { format: theirs.format, size: theirs['virtual-size'] });
      });
    });
  }

  it('a differencing VHD (whose parent QEMU ignores) is read without an overlay and answers as its flat copy', async () => {
    const parent = join(dir, 'parent.vhd');
    const childPlain = join(dir, 'child-plain.vhd');
    await sh('qemu-img', ['convert', '-q', '-f', 'qcow2', '-O', 'vpc', qcow2, parent]);
    // The child changes nothing: an empty dynamic disk of the parent's size, made differencing.
    const size = JSON.parse(await sh('qemu-img', ['info', '--output=json', parent]))['virtual-size'] as number;
    await sh('qemu-img', ['create', '-q', '-f', 'vpc', childPlain, String(size)]);
    const child = join(dir, 'child.vhd');
    const parentId = (await readFile(parent)).subarray(68, 84);
    await writeFile(child, makeDifferencing(await readFile(childPlain), { uniqueId: parentId, locators: [{ platform: 'W2ru', name: '.\\parent.vhd' }], parentName: 'parent.vhd' }));
    await guardImages([child, parent], async () => {
      const df = await guestlens(['df', '--json', child]);
      assert.equal(df.exitCode, 0, df.stderr);
      assert.deepEqual(rows(df.stdout), expectedDf);
      const info = await guestlens(['image', 'info', '--json', child]);
      const chain = JSON.parse(info.stdout) as { format: string; 'backing-filename'?: string }[];
      assert.deepEqual(chain.map((l) => l.format), ['vpc', 'vpc']);
      assert.equal(chain[0]['backing-filename'], '.\\parent.vhd');
    });
  });
});
