import assert from 'node:assert/strict';
import { symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { acquire, ImageOpenError, probe } from '@guestlens/locking';
import { scratchDir } from '../../../test/support/scratch.ts';

const RO = { perm: ['consistent read' as const], shared: ['consistent read' as const, 'write unchanged' as const] };

async function openError(fn: () => Promise<unknown>): Promise<ImageOpenError> {
  const err = await fn().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof ImageOpenError, `expected ImageOpenError, got ${String(err)}`);
  assert.equal(err.userFacing, true);
  return err;
}

describe('locking: bad input gets a typed, clear error from probe and acquire', () => {
  it('missing, directory, empty, symlink loop, a file in place of a directory', async () => {
    const dir = scratchDir('bad input');
    const loop = join(dir, 'loop');
    symlinkSync(loop, loop);
    const file = join(dir, 'plain');
    writeFileSync(file, '');
    const cases: Array<[string, string, string]> = [
      [join(dir, 'missing ü.qcow2'), 'no such file or directory', 'ENOENT'],
      [dir, 'is a directory, not a disk image', 'EISDIR'],
      ['', 'empty path', 'EINVAL'],
      [loop, 'too many levels of symbolic links', 'ELOOP'],
      [join(file, 'x'), 'a component of the path is not a directory', 'ENOTDIR'],
    ];
    for (const [path, reason, code] of cases) {
      for (const fn of [() => probe(path), () => acquire(path, RO)]) {
        const err = await openError(fn);
        assert.equal(err.path, path);
        assert.equal(err.code, code);
        assert.equal(err.message, `${/^[\w./+@%:,=-]+$/u.test(path) ? path : JSON.stringify(path)}: ${reason}`);
      }
    }
  });

  it('a FIFO nobody writes to does not hang us; sockets and character devices are refused', async () => {
    const dir = scratchDir('special');
    const fifo = join(dir, 'fifo');
    await execa('mkfifo', [fifo]);
    const chr = join(dir, 'chr');
    await execa('mknod', [chr, 'c', '1', '3']);
    const sock = join(dir, 'sock');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      for (const [path, reason] of [
        [fifo, 'is a FIFO (named pipe), not a disk image'],
        [sock, 'is a socket, not a disk image'],
        [chr, 'is a character device, not a disk image (QEMU images are regular files or block devices)'],
      ]) {
        assert.equal((await openError(() => probe(path))).message, `${path}: ${reason}`);
        assert.equal((await openError(() => acquire(path, RO))).message, `${path}: ${reason}`);
      }
    } finally {
      server.close();
    }
  });
});
