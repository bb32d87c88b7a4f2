import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { assertImageUnchanged, guardImages, snapshotImage, type ImageSnapshot } from '../../test/support/imageGuard.ts';
import { guestlens, repoRoot, sh } from '../../test/support/run.ts';
import { scratchDir } from '../../test/support/scratch.ts';
import { canSwitchUser, guestlensAs, worldReadableDir } from '../../packages/locking/test/support/cli.ts';
import { assertGone, assertNoOverlayDirs, assertOverlayReads, makeRawImage, MiB, qemuImgCreate, qemuIoWrite } from '../../packages/overlay/test/fixtures.ts';

const cliBin = join(repoRoot, 'cli', 'bin', 'guestlens.mjs');

describe('guestlens overlay', () => {
  let dir: string;
  let base: string;
  let top: string;
  before(async () => {
    dir = scratchDir('cli-overlay');
    base = join(dir, 'base.raw');
    makeRawImage(base, 2 * MiB);
    top = join(dir, 'top.qcow2');
    await qemuImgCreate(top, 'qcow2', undefined, ['-F', 'raw', '-b', 'base.raw']);
    await qemuIoWrite(top, 'qcow2', 0x42, 0, 65536);
    snapshots = await Promise.all([base, top].map(snapshotImage));
  });
  // Every test here may read these two: none may change them.
  let snapshots: ImageSnapshot[] = [];
  afterEach(async () => {
    assertNoOverlayDirs();
    for (const s of snapshots) await assertImageUnchanged(s);
  });

  /** Remove what `--keep` left. */
  async function removeKept(path: string): Promise<void> {
    await sh('rm', ['-r', dirname(path)]);
  }

  it('create --keep prints only the overlay path; info shows the chain', async () => {
    await guardImages([top, base], async () => {
      const r = await guestlens(['overlay', 'create', top, '--keep']);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stderr, '');
      const lines = r.stdout.split('\n');
      assert.equal(lines.length, 2);
      const path = lines[0];
      assert.match(path, /\/guestlens-overlay-[^/]+\/top\.overlay\.qcow2$/);
      try {
        await assertOverlayReads(path, 'read -P 0x42 0 64k');
        const info = await guestlens(['overlay', 'info', path]);
        assert.equal(info.exitCode, 0, info.stderr);
        assert.deepEqual(info.stdout.split('\n'), [
          'depth  format  size   file',
          `0      qcow2   2 MiB  ${path}`,
          `1      qcow2   2 MiB  ${top}  (locking off)`,
          `2      raw     2 MiB  ${base}`,
          '',
        ]);
        const json = await guestlens(['overlay', 'info', path, '--json']);
        const parsed = JSON.parse(json.stdout) as { image: string; chain: { depth: number; filename: string; format: string; virtualSize: number; lockingOff?: boolean; backingFilename?: string }[] };
        assert.equal(parsed.image, path);
        assert.deepEqual(parsed.chain.map((e) => [e.depth, e.filename, e.format, e.virtualSize, e.lockingOff ?? false]), [
          [0, path, 'qcow2', 2 * MiB, false],
          [1, top, 'qcow2', 2 * MiB, true],
          [2, base, 'raw', 2 * MiB, false],
        ]);
        assert.equal(parsed.chain[0].backingFilename, `json:{"driver":"qcow2","file":{"driver":"file","filename":${JSON.stringify(top)},"locking":"off"}}`);
      } finally {
        await removeKept(path);
      }
    });
  });

  it('create --json --keep describes the overlay and the chain', async () => {
    const r = await guestlens(['overlay', 'create', top, '--keep', '--json', '--format', 'qcow2']);
    assert.equal(r.exitCode, 0, r.stderr);
    const o = JSON.parse(r.stdout) as { path: string; dir: string; image: string; format: string; backing: string; kept: boolean; chain: { filename: string; formatFrom: string }[] };
    try {
      assert.equal(o.image, top);
      assert.equal(o.format, 'qcow2');
      assert.equal(o.kept, true);
      assert.equal(dirname(o.path), o.dir);
      assert.deepEqual(o.chain.map((e) => [e.filename, e.formatFrom]), [[top, 'given'], [base, 'recorded']]);
      assert.ok(existsSync(o.path));
    } finally {
      await removeKept(o.path);
    }
  });

  it('create without --keep removes the overlay when its input ends (here: at once)', async () => {
    const r = await guestlens(['overlay', 'create', top], { input: '' });
    assert.equal(r.exitCode, 0, r.stderr);
    const path = r.stdout.trim();
    assert.match(path, /top\.overlay\.qcow2$/);
    assertGone(dirname(path));
  });

  it('a relative image path that starts with a dash (after --)', async () => {
    copyFileSync(base, join(dir, '-f raw'));
    const r = await guardImages([join(dir, '-f raw')], () => execa('node', [cliBin, 'overlay', 'create', '--keep', '--json', '--', '-f raw'], { cwd: dir, reject: false }));
    assert.equal(r.exitCode, 0, String(r.stderr));
    const o = JSON.parse(String(r.stdout)) as { path: string; format: string; backing: string };
    try {
      assert.equal(o.format, 'raw');
      assert.equal(JSON.parse(o.backing.slice(5)).file.filename, join(dir, '-f raw'));
      await assertOverlayReads(o.path, 'read 0 64k');
    } finally {
      await removeKept(o.path);
    }
  });

  it('--no-backing and --backing same-dir', async () => {
    const refused = await guestlens(['overlay', 'create', top, '--keep', '--no-backing']);
    assert.deepEqual([refused.exitCode, refused.stdout], [1, '']);
    assert.equal(refused.stderr, `guestlens: ${top} names backing file ${JSON.stringify(base)}, which guestlens refuses: the backing policy is "none" (the image may name no other file); use --backing same-dir or --backing allow if you trust it\n`);
    const ok = await guestlens(['overlay', 'create', top, '--backing', 'same-dir'], { input: '' });
    assert.equal(ok.exitCode, 0, ok.stderr);
    const outside = join(scratchDir('cli-outside'), 'escape.qcow2');
    await qemuImgCreate(outside, 'qcow2', undefined, ['-F', 'raw', '-b', base]);
    const escape = await guardImages([outside], () => guestlens(['overlay', 'create', outside, '--backing', 'same-dir'], { input: '' }));
    assert.equal(escape.exitCode, 1);
    assert.match(escape.stderr, /^guestlens: .*escape\.qcow2 names backing file .*base\.raw", which guestlens refuses: it lies outside .* the backing policy is "same-dir"/);
  });

  describe('usage and errors', () => {
    it('usage errors exit 2', async () => {
      const none = await guestlens(['overlay']);
      assert.equal(none.exitCode, 2);
      assert.match(none.stderr, /Name an overlay command: create or info/);
      const noImage = await guestlens(['overlay', 'create']);
      assert.equal(noImage.exitCode, 2);
      assert.match(noImage.stderr, /^guestlens: Name the image to overlay./);
      const badPolicy = await guestlens(['overlay', 'create', top, '--backing', 'sometimes']);
      assert.deepEqual([badPolicy.exitCode, badPolicy.stderr], [2, 'guestlens: --backing sometimes: use one of allow, same-dir, none\n']);
    });

    it('--help tells users to give untrusted raw images --format raw', async () => {
      for (const args of [['overlay', '--help'], ['overlay', 'create', '--help']]) {
        const r = await guestlens(args);
        assert.equal(r.exitCode, 0);
        assert.match(r.stdout.replace(/\s+/g, ' '), /Untrusted raw images: give --format raw/);
      }
    });

    it('bad input exits 1 with one line and no stack', async () => {
      const missing = join(dir, 'missing.qcow2');
      const cases: [string[], string][] = [
        [['overlay', 'create', missing], `guestlens: ${missing}: no such file; check the path\n`],
        [['overlay', 'create', dir], `guestlens: ${dir}: is a directory, not a disk image\n`],
        [['overlay', 'create', base, '--format', 'qcow2'], `guestlens: ${base}: --format qcow2 was given, but the image's header is not that of any known format (it looks raw); give --format raw, or leave --format out to use what the header says\n`],
        [['overlay', 'create', base, '--format', 'qed'], `guestlens: ${base}: format "qed" is not supported; use one of qcow2, vmdk, vdi, vhdx, vpc, raw\n`],
        [['overlay', 'info', missing], `guestlens: ${missing}: no such file; check the path\n`],
      ];
      for (const [args, stderr] of cases) {
        const r = await guestlens(args, { input: '' });
        assert.deepEqual([r.exitCode, r.stdout, r.stderr], [1, '', stderr], args.join(' '));
      }
    });

    it('qemu-img missing names the Debian package', async () => {
      const bin = scratchDir('node-only');
      symlinkSync(process.execPath, join(bin, 'node'));
      const r = await guestlens(['overlay', 'create', top], { env: { PATH: bin }, input: '' });
      assert.deepEqual([r.exitCode, r.stdout], [1, '']);
      assert.equal(r.stderr, 'guestlens: qemu-img was not found on PATH; guestlens needs it to make overlays: install the Debian package qemu-utils (apt-get install qemu-utils)\n');
    });

    it('TMPDIR that cannot hold the overlay', async () => {
      const nowhere = join(dir, 'no-such-tmp');
      const r = await guestlens(['overlay', 'create', top], { env: { TMPDIR: nowhere }, input: '' });
      assert.deepEqual([r.exitCode, r.stdout], [1, '']);
      assert.equal(r.stderr, `guestlens: cannot create the overlay's private directory in ${nowhere}: no such directory; point TMPDIR (or --dir) at a writable directory\n`);
    });

    it('an image the user cannot read', async function () {
      if (!canSwitchUser()) {
        console.log('      (skipped: needs root to run the CLI as nobody)');
        this.skip();
      }
      const world = worldReadableDir();
      try {
        const image = join(world.dir, 'secret.raw');
        makeRawImage(image, 1 * MiB);
        chmodSync(image, 0o600);
        const r = await guestlensAs('nobody', ['overlay', 'create', image]);
        assert.deepEqual([r.exitCode, r.stdout, r.stderr], [1, '', `guestlens: ${image}: permission denied: it cannot be opened for reading; run guestlens as a user who can read the image\n`]);
      } finally {
        world.remove();
      }
    });
  });
});
