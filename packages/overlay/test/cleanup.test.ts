import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { createOverlay, ImageAccessError, livePrivateDirs, PRIVATE_DIR_PREFIX, withOverlay } from '@guestlens/overlay';
import { scratchDir } from '../../../test/support/scratch.ts';
import { assertImageUnchanged, guardImages, snapshotImage, type ImageSnapshot } from '../../../test/support/imageGuard.ts';
import { repoRoot } from '../../../test/support/run.ts';
import { startTracked, stop } from '../../../test/support/processes.ts';
import { assertGone, assertNoOverlayDirs, assertOverlayReads, makeRawImage, MiB, productTempEntries, qemuImgCreate } from './fixtures.ts';

const child = join(dirname(fileURLToPath(import.meta.url)), 'support', 'overlayChild.ts');
const cliBin = join(repoRoot, 'cli', 'bin', 'guestlens.mjs');

/** The first line a child prints, as soon as it prints it (execa hands over stdout only at exit). */
function firstLine(proc: ResultPromise): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    proc.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const nl = text.indexOf('\n');
      if (nl >= 0) resolve(text.slice(0, nl));
    });
    proc.then((r) => reject(new Error(`exited (${r.exitCode ?? r.signal}) before printing a line: ${String(r.stderr)}`)), reject);
  });
}

describe('overlay: the temporary directory never outlives us', () => {
  let dir: string;
  let image: string;
  let snapshot: ImageSnapshot;
  before(async () => {
    dir = scratchDir('cleanup');
    image = join(dir, 'disk.raw');
    makeRawImage(image, 1 * MiB);
    snapshot = await snapshotImage(image);
  });
  afterEach(async () => {
    assertNoOverlayDirs();
    await assertImageUnchanged(snapshot);
  });

  it('is private (0700), named guestlens-overlay-*, in TMPDIR, and removed by close (twice is fine)', async () => {
    const listenersBefore = process.listenerCount('SIGTERM');
    await guardImages([image], async () => {
      const overlay = await createOverlay(image);
      assert.equal(dirname(overlay.dir), tmpdir());
      assert.ok(basename(overlay.dir).startsWith(PRIVATE_DIR_PREFIX));
      assert.equal(statSync(overlay.dir).mode & 0o777, 0o700);
      assert.equal(dirname(overlay.path), overlay.dir);
      assert.equal(basename(overlay.path), 'disk.overlay.qcow2');
      assert.deepEqual(livePrivateDirs(), [overlay.dir]);
      // Signal handlers exist only while an overlay does.
      assert.equal(process.listenerCount('SIGTERM'), listenersBefore + 1);
      await overlay.close();
      await overlay.close();
      assertGone(overlay.dir);
      assert.equal(process.listenerCount('SIGTERM'), listenersBefore);
    });
  });

  it('--dir puts the private directory there', async () => {
    const where = scratchDir('elsewhere');
    const overlay = await createOverlay(image, { dir: where });
    assert.equal(dirname(overlay.dir), where);
    await overlay.close();
    assertGone(overlay.dir);
  });

  describe('withOverlay', () => {
    let disks: string[];
    before(async () => {
      disks = [join(dir, 'sda.raw'), join(dir, 'sdb.qcow2')];
      makeRawImage(disks[0], 1 * MiB, 'sda');
      await qemuImgCreate(disks[1], 'qcow2', '2M');
      diskSnapshots = await Promise.all(disks.map(snapshotImage));
    });
    let diskSnapshots: ImageSnapshot[] = [];
    afterEach(async () => {
      for (const s of diskSnapshots) await assertImageUnchanged(s);
    });

    it('gives one overlay per disk and removes them all afterwards', async () => {
      await guardImages(disks, async () => {
        const seen = await withOverlay(disks, async (overlays) => {
          assert.deepEqual(overlays.map((o) => [o.image, o.format]), [[disks[0], 'raw'], [disks[1], 'qcow2']]);
          for (const o of overlays) await assertOverlayReads(o.path, 'read 0 64k');
          return overlays.map((o) => o.dir);
        });
        for (const d of seen) assertGone(d);
      });
    });

    it('removes them when the callback throws, and passes the error on', async () => {
      let dirs: string[] = [];
      await assert.rejects(
        withOverlay(disks, async (overlays) => {
          dirs = overlays.map((o) => o.dir);
          throw new Error('the caller failed');
        }),
        /the caller failed/,
      );
      assert.equal(dirs.length, 2);
      for (const d of dirs) assertGone(d);
    });

    it('removes the ones it made when another disk cannot be overlaid', async () => {
      let called = false;
      await assert.rejects(
        withOverlay([disks[0], join(dir, 'missing.qcow2'), disks[1]], async () => {
          called = true;
        }),
        (err: Error) => err instanceof ImageAccessError && /missing\.qcow2/.test(err.message),
      );
      assert.equal(called, false);
      assert.deepEqual(livePrivateDirs(), []);
    });

    it('takes one format per disk', async () => {
      await withOverlay(disks, async (overlays) => {
        assert.deepEqual(overlays.map((o) => o.format), ['raw', 'raw']);
      }, { format: ['raw', 'raw'] });
    });
  });

  describe('a real process that ends without closing its overlay', () => {
    async function runChild(mode: string, signal?: NodeJS.Signals) {
      const proc = execa('node', ['--import', 'tsx', child, image, mode], { cwd: repoRoot, reject: false, stdin: 'ignore' });
      const overlayDir = await firstLine(proc);
      if (signal) {
        assert.ok(existsSync(overlayDir), 'the overlay exists while the process runs');
        proc.kill(signal);
      }
      const r = await proc;
      assertGone(overlayDir);
      return r;
    }

    it('process.exit() without close', async () => {
      const r = await runChild('exit');
      assert.equal(r.exitCode, 0);
    });

    it('an uncaught error', async () => {
      const r = await runChild('throw');
      assert.equal(r.exitCode, 1);
      assert.match(String(r.stderr), /boom/);
    });

    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      it(`${signal}: removed, and the process still dies of ${signal}`, async () => {
        const r = await runChild('wait', signal);
        assert.equal(r.signal, signal, `exit ${r.exitCode} signal ${r.signal}: ${String(r.stderr)}`);
      });
    }

    it('SIGTERM with the program\'s own handler: removed, and the program decides how to end', async () => {
      const r = await runChild('own-handler', 'SIGTERM');
      assert.equal(r.exitCode, 7);
      assert.match(String(r.stdout), /own handler ran/);
    });
  });

  describe('guestlens overlay create (a real CLI process)', () => {
    async function startCreate(args: string[] = []) {
      const proc = startTracked('node', [cliBin, 'overlay', 'create', image, ...args], { input: true });
      const path = await firstLine(proc as unknown as ResultPromise);
      return { proc, path, overlayDir: dirname(path) };
    }

    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      it(`without --keep: the overlay stays until ${signal}, then is removed and the CLI dies of it (a shell sees 128+signal)`, async () => {
        await guardImages([image], async () => {
          const { proc, path, overlayDir } = await startCreate();
          await assertOverlayReads(path, 'read 0 64k');
          assert.ok(existsSync(path));
          process.kill(proc.pid, signal);
          const r = await proc;
          assert.equal(r.signal, signal, `exit ${r.exitCode}: ${String(r.stderr)}`);
          assertGone(overlayDir);
        });
      });
    }

    it('without --keep: removed when standard input closes, exit 0', async () => {
      const { proc, overlayDir } = await startCreate();
      assert.ok(existsSync(overlayDir));
      proc.stdin?.end();
      const r = await proc;
      assert.equal(r.exitCode, 0, String(r.stderr));
      assertGone(overlayDir);
    });

    it('--keep: prints the path and leaves the overlay behind', async () => {
      const { proc, path, overlayDir } = await startCreate(['--keep']);
      const r = await proc;
      assert.equal(r.exitCode, 0, String(r.stderr));
      try {
        assert.ok(existsSync(path));
        assert.deepEqual(productTempEntries(), [basename(overlayDir)]);
        await assertOverlayReads(path, 'read 0 64k');
      } finally {
        await execa('rm', ['-r', overlayDir]);
        await stop(proc);
      }
    });
  });
});
