import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import {
  createOverlay,
  FormatMismatchError,
  ImageAccessError,
  livePrivateDirs,
  QemuImgError,
  QemuImgMissingError,
  QemuImgTooOldError,
  TempDirError,
  UnsupportedFormatError,
} from '@guestlens/overlay';
import { scratchDir } from '../../../test/support/scratch.ts';
import { assertImageUnchanged, guardImages, snapshotImage, type ImageSnapshot } from '../../../test/support/imageGuard.ts';
import { sh } from '../../../test/support/run.ts';
import { assertNoOverlayDirs, assertSameGuestBytes, makeRawImage, MiB, qemuImgCreate } from './fixtures.ts';

/** Run `fn` with PATH set to `path` only. */
async function withPath<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.PATH;
  process.env.PATH = path;
  try {
    return await fn();
  } finally {
    process.env.PATH = saved;
  }
}

/** A qemu-img that reports `version` and otherwise is the real one: only the version check is stood in for (no old QEMU is installable here). */
function qemuImgReporting(version: string): string {
  const bin = scratchDir('old-qemu');
  writeFileSync(join(bin, 'qemu-img'), `#!/bin/sh\nif [ "$1" = --version ]; then echo "qemu-img version ${version}"; exit 0; fi\nexec /usr/bin/qemu-img "$@"\n`, { mode: 0o755 });
  return bin;
}

function rejectsWith<E extends Error>(cls: new (...args: never[]) => E, pattern: RegExp) {
  return (err: Error) => {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${err.name}: ${err.message}`);
    assert.match(err.message, pattern);
    assert.equal((err as { userFacing?: boolean }).userFacing, true);
    return true;
  };
}

describe('overlay: clear errors', () => {
  let dir: string;
  let raw: string;
  let qcow2: string;
  before(async () => {
    dir = scratchDir('errors');
    raw = join(dir, 'disk.raw');
    makeRawImage(raw, 1 * MiB);
    qcow2 = join(dir, 'disk.qcow2');
    await qemuImgCreate(qcow2, 'qcow2', '1M');
    snapshots = await Promise.all([raw, qcow2].map(snapshotImage));
  });
  // Every test here may read these two: none may change them.
  let snapshots: ImageSnapshot[] = [];
  afterEach(async () => {
    for (const s of snapshots) await assertImageUnchanged(s);
    assertNoOverlayDirs();
    assert.deepEqual(livePrivateDirs(), []);
  });

  it('qemu-img missing: names the Debian package', async () => {
    const empty = scratchDir('empty-path');
    await guardImages([raw], () =>
      withPath(empty, () => assert.rejects(createOverlay(raw), rejectsWith(QemuImgMissingError, /qemu-img was not found on PATH.*qemu-utils/))),
    );
  });

  it('qemu-img older than 2.10 (no "locking" option) is refused; 2.10 is enough', async () => {
    await guardImages([raw], async () => {
      await withPath(qemuImgReporting('2.9.1'), () => assert.rejects(createOverlay(raw), rejectsWith(QemuImgTooOldError, /qemu-img 2\.9\.1 is too old.*2\.10/)));
      const overlay = await withPath(`${qemuImgReporting('2.10.0')}:${process.env.PATH}`, () => createOverlay(raw));
      await overlay.close();
    });
  });

  it('image missing, a directory, a FIFO, an empty path', async () => {
    await assert.rejects(createOverlay(join(dir, 'nope.qcow2')), rejectsWith(ImageAccessError, /nope\.qcow2: no such file/));
    await assert.rejects(createOverlay(join(dir, 'nope', 'x.img')), rejectsWith(ImageAccessError, /no such file/));
    await assert.rejects(createOverlay(join(raw, 'x.img')), rejectsWith(ImageAccessError, /not a directory/));
    await assert.rejects(createOverlay(dir), rejectsWith(ImageAccessError, /is a directory, not a disk image/));
    const fifo = join(dir, 'fifo');
    await sh('mkfifo', [fifo]);
    await assert.rejects(createOverlay(fifo), rejectsWith(ImageAccessError, /not a regular file or block device/));
    await assert.rejects(createOverlay(''), rejectsWith(ImageAccessError, /empty image path/));
  });

  it('a format given but wrong: qcow2 asked, raw found (and the reverse pairs)', async () => {
    await guardImages([raw, qcow2], async () => {
      await assert.rejects(createOverlay(raw, { format: 'qcow2' }), rejectsWith(FormatMismatchError, /--format qcow2 was given, but .*looks raw/));
      await assert.rejects(createOverlay(qcow2, { format: 'vdi' }), rejectsWith(FormatMismatchError, /--format vdi .* that of qcow2/));
    });
  });

  it('--format raw is always honoured: a qcow2 file read as raw shows its own bytes, not its guest', async () => {
    await guardImages([qcow2], async () => {
      const overlay = await createOverlay(qcow2, { format: 'raw' });
      try {
        assert.equal(overlay.format, 'raw');
        assert.deepEqual(overlay.chain.map((e) => [e.format, e.backingFilename]), [['raw', undefined]]);
        await assertSameGuestBytes(overlay.path, qcow2, 'raw');
      } finally {
        await overlay.close();
      }
    });
  });

  it('an unsupported format name', async () => {
    await assert.rejects(createOverlay(raw, { format: 'qed' }), rejectsWith(UnsupportedFormatError, /format "qed" is not supported; use one of qcow2, vmdk, vdi, vhdx, vpc, raw/));
    await assert.rejects(createOverlay(raw, { format: 'vhd' }), rejectsWith(UnsupportedFormatError, /"vhd"/));
  });

  it('a corrupt image: qemu-img\'s own reason, with the image named', async () => {
    const bad = join(dir, 'bad.vhdx');
    writeFileSync(bad, Buffer.concat([Buffer.from('vhdxfile'), Buffer.alloc(1 * MiB)]));
    await guardImages([bad], () => assert.rejects(createOverlay(bad), rejectsWith(QemuImgError, /bad\.vhdx/)));
  });

  it('a path too long for the overlay header', async () => {
    let deep = scratchDir('long');
    for (let i = 0; i < 5; i++) deep = join(deep, String(i).repeat(200));
    mkdirSync(deep, { recursive: true });
    const image = join(deep, 'disk.raw');
    makeRawImage(image, 1 * MiB);
    await guardImages([image], () => assert.rejects(createOverlay(image), rejectsWith(ImageAccessError, /backing reference of \d+ bytes.*at most 1023.*symbolic link/)));
  });

  it('the temporary directory cannot be made: missing, not a directory', async () => {
    await assert.rejects(createOverlay(raw, { dir: join(dir, 'no-such-dir') }), rejectsWith(TempDirError, /no-such-dir: no such directory; point TMPDIR/));
    await assert.rejects(createOverlay(raw, { dir: raw }), rejectsWith(TempDirError, /not a directory/));
  });

  it('the temporary directory is on a read-only file system', async function () {
    const ro = scratchDir('ro-tmp');
    const mounted = await execa('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro], { reject: false });
    if (mounted.exitCode !== 0) {
      console.log(`      (cannot mount a read-only tmpfs here: ${String(mounted.stderr).trim()})`);
      this.skip();
    }
    try {
      await assert.rejects(createOverlay(raw, { dir: ro }), rejectsWith(TempDirError, /read-only file system/));
    } finally {
      await sh('umount', [ro]);
    }
  });
});
