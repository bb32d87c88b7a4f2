import assert from 'node:assert/strict';
import { copyFileSync, chmodSync, mkdirSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { guardImages } from '../../test/support/imageGuard.ts';
import { startHolder } from '../../test/support/qemuHolders.ts';
import { guestlens } from '../../test/support/run.ts';
import { scratchDir } from '../../test/support/scratch.ts';
import { makeImage } from '../../packages/locking/test/support/images.ts';
import { canSwitchUser, guestlensAs, worldReadableDir } from '../../packages/locking/test/support/cli.ts';

describe('guestlens locks', () => {
  it('names the pid and command of a running VM, with its permissions and the verdict', async () => {
    const image = await makeImage('qcow2');
    const vm = await startHolder('qemu-system', image, 'qcow2');
    const r = await guardImages([image], () => guestlens(['locks', image]));
    assert.equal(r.stderr, '');
    assert.equal(r.exitCode, 0);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], `${image}: in use read-write by qemu-system-x86_64 (pid ${vm.pid}): reading needs an overlay`);
    assert.match(lines[1], new RegExp(`^  qemu-system-x86_64 \\(pid ${vm.pid}, fd \\d+, OFD\\): uses consistent read, write, resize; refuses to share write, resize \\[bytes 100,101,103,201,203\\]$`));
    assert.equal(lines.length, 3);
  });

  it('read-only holders, several images, free ones', async () => {
    const held = await makeImage('raw', 'held.raw');
    const free = await makeImage('qcow2', 'free.qcow2');
    const nbd = await startHolder('qemu-nbd --read-only', held, 'raw');
    const r = await guardImages([held, free], () => guestlens(['locks', held, free]));
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(
      r.stdout,
      `${held}: in use read-only by qemu-nbd (pid ${nbd.pid}): reading is fine, writing is refused\n` +
        r.stdout.split('\n')[1] + '\n' +
        `${free}: free\n`,
    );
    assert.match(r.stdout.split('\n')[1], new RegExp(`^  qemu-nbd \\(pid ${nbd.pid}, fd \\d+, OFD\\): uses consistent read; refuses to share resize \\[bytes 100,203\\]$`));
  });

  it('--json: every byte, the holders, the verdict', async () => {
    const image = await makeImage('qcow2');
    const qsd = await startHolder('qsd writable', image, 'qcow2');
    const r = await guardImages([image], () => guestlens(['locks', '--json', image]));
    assert.equal(r.exitCode, 0, r.stderr);
    const [result] = JSON.parse(r.stdout);
    assert.equal(result.path, image);
    assert.deepEqual(result.heldBytes, [100, 101, 103, 201, 203]);
    assert.equal(result.bytes.length, 10);
    assert.deepEqual(result.bytes[1], { byte: 101, permission: 'write', role: 'use', held: true, holders: [{ pid: qsd.pid, command: 'qemu-storage-daemon', fd: result.holders[0].fd, kind: 'OFD' }] });
    assert.deepEqual(result.bytes[2], { byte: 102, permission: 'write unchanged', role: 'use', held: false, holders: [] });
    assert.equal(result.holders.length, 1);
    assert.deepEqual(result.uses, ['consistent read', 'write', 'resize']);
    assert.deepEqual(result.refusesToShare, ['write', 'resize']);
    assert.equal(result.verdict, `in use read-write by qemu-storage-daemon (pid ${qsd.pid}): reading needs an overlay`);
  });

  it('a symlink and a path with spaces and non-ASCII characters', async () => {
    const dir = scratchDir('odd names');
    const image = await makeImage('qcow2', 'my disk – ü.qcow2', dir);
    const link = join(dir, 'link to disk');
    symlinkSync(image, link);
    const io = await startHolder('qemu-io -r', image, 'qcow2');
    const r = await guardImages([image], () => guestlens(['locks', link]));
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout.split('\n')[0], `${link}: in use read-only by qemu-io (pid ${io.pid}): reading is fine, writing is refused`);
  });

  it('a block device (loop) held by QEMU', async function () {
    const image = await makeImage('raw');
    const attach = await execa('losetup', ['--find', '--show', '--read-only', image], { reject: false });
    if (attach.exitCode !== 0) {
      console.log(`    (skipped: losetup cannot attach a loop device here: ${attach.stderr.trim()})`);
      this.skip();
    }
    const dev = attach.stdout.trim();
    try {
      const io = await startHolder('qemu-io -r', dev, 'raw');
      const r = await guestlens(['locks', dev]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout.split('\n')[0], `${dev}: in use read-only by qemu-io (pid ${io.pid}): it shares everything: others may read and write`);
      await io.stop();
    } finally {
      await execa('losetup', ['--detach', dev], { reject: false });
    }
  });

  describe('bad input: a clear message and a non-zero exit, never a hang', () => {
    it('missing file, directory, empty path, symlink loop', async () => {
      const dir = scratchDir('bad');
      const missing = join(dir, 'nope ü.qcow2');
      const loop = join(dir, 'loop');
      symlinkSync(loop, loop);
      const cases: Array<[string, string]> = [
        [missing, `guestlens: "${missing}": no such file or directory\n`],
        [dir, `guestlens: ${dir}: is a directory, not a disk image\n`],
        ['', 'guestlens: "": empty path\n'],
        [loop, `guestlens: ${loop}: too many levels of symbolic links\n`],
      ];
      for (const [path, stderr] of cases) {
        const r = await guestlens(['locks', path], { timeoutMs: 30000 });
        assert.deepEqual([r.exitCode, r.stdout, r.stderr], [1, '', stderr], path);
      }
    });

    it('FIFO, socket, character device', async () => {
      const dir = scratchDir('special');
      const fifo = join(dir, 'fifo');
      await execa('mkfifo', [fifo]);
      const chr = join(dir, 'null-device');
      await execa('mknod', [chr, 'c', '1', '3']);
      const sock = join(dir, 'sock');
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(sock, resolve));
      try {
        const cases: Array<[string, string]> = [
          [fifo, 'is a FIFO (named pipe), not a disk image'],
          [sock, 'is a socket, not a disk image'],
          [chr, 'is a character device, not a disk image (QEMU images are regular files or block devices)'],
        ];
        for (const [path, reason] of cases) {
          for (const command of ['locks', 'lock']) {
            const args = command === 'lock' ? ['lock', path, '--', 'true'] : ['locks', path];
            const r = await guestlens(args, { timeoutMs: 30000 });
            assert.deepEqual([r.exitCode, r.stdout, r.stderr], [1, '', `guestlens: ${path}: ${reason}\n`], `${command} ${path}`);
          }
        }
      } finally {
        server.close();
      }
    });

    it('a missing image among good ones: partial result, exit 3; --json says which', async () => {
      const good = await makeImage('raw');
      const missing = join(scratchDir('m'), 'gone.raw');
      const r = await guestlens(['locks', good, missing]);
      assert.equal(r.exitCode, 3);
      assert.equal(r.stdout, `${good}: free\n`);
      assert.equal(r.stderr, `guestlens: ${missing}: no such file or directory\n`);
      const j = await guestlens(['locks', '--json', missing, good]);
      assert.equal(j.exitCode, 3);
      const results = JSON.parse(j.stdout);
      assert.deepEqual(results[0], { path: missing, error: `${missing}: no such file or directory` });
      assert.equal(results[1].verdict, 'free');
    });

    it('no image at all is a usage error', async () => {
      const r = await guestlens(['locks']);
      assert.equal(r.exitCode, 2);
      assert.match(r.stderr, /^guestlens: Not enough non-option arguments/);
    });
  });

  describe('as an unprivileged user', () => {
    let world: ReturnType<typeof worldReadableDir> | undefined;
    afterEach(() => world?.remove());

    it('works on an image it can only read (holders then unnamed) and explains an unreadable one', async function () {
      if (!canSwitchUser()) {
        console.log('    (skipped: needs root to run the CLI as nobody)');
        this.skip();
      }
      world = worldReadableDir();
      const image = join(world.dir, 'disk.qcow2');
      copyFileSync(await makeImage('qcow2'), image);
      chmodSync(image, 0o644);
      await startHolder('qemu-io', image, 'qcow2');
      const r = await guardImages([image], () => guestlensAs('nobody', ['locks', '--json', image]));
      assert.equal(r.exitCode, 0, r.stderr);
      const [result] = JSON.parse(r.stdout);
      assert.deepEqual(result.heldBytes, [100, 101, 103, 201, 203]);
      assert.equal(result.verdict, 'in use read-write by a process we cannot see (run as root to name it): reading needs an overlay');
      const hidden = join(world.dir, 'hidden');
      mkdirSync(hidden, { mode: 0o700 });
      const unreadable = join(world.dir, 'unreadable.qcow2');
      copyFileSync(image, unreadable);
      chmodSync(unreadable, 0o600);
      const u = await guestlensAs('nobody', ['locks', unreadable]);
      assert.deepEqual([u.exitCode, u.stdout, u.stderr], [1, '', `guestlens: ${unreadable}: permission denied while opening the image for reading (run as a user who may read the image)\n`]);
      const h = await guestlensAs('nobody', ['locks', join(hidden, 'x.qcow2')]);
      assert.deepEqual([h.exitCode, h.stderr], [1, `guestlens: ${join(hidden, 'x.qcow2')}: permission denied while looking the image up (run as a user who may read the image)\n`]);
    });
  });
});
