import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { acquire, LockByteError, LockConflictError, probe, type ImageLock } from '@guestlens/locking';
import { guardImages } from '../../../test/support/imageGuard.ts';
import { startTracked, waitFor } from '../../../test/support/processes.ts';
import { startHolder } from '../../../test/support/qemuHolders.ts';
import { scratchDir } from '../../../test/support/scratch.ts';
import { makeImage, makeOverlay, type Format } from './support/images.ts';
import { equivalentRequest, HOLDER_OF_MODE, OPENER_MODES, qemuIoOpen, type OpenerMode } from './support/openers.ts';
import { holdForeignWriteLock } from './support/foreignLock.ts';

/** Lines of /proc/locks on the image's inode. */
function procLocksOn(image: string): string[] {
  const ino = statSync(image).ino;
  return readFileSync('/proc/locks', 'utf8').split('\n').filter((l) => l.includes(`:${ino} `));
}

/** The ranges locked through one of our fds, from its fdinfo ("100-101"). */
function fdLockRanges(fd: number): string[] {
  return readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('lock:'))
    .map((l) => l.trim().split(/\s+/).slice(-2).join('-'));
}

/** Lock lines on the image's inode in any fdinfo of this process. */
function ourFdinfoLocks(image: string): string[] {
  const ino = statSync(image).ino;
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fdinfo')) {
    try {
      out.push(...readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').filter((l) => l.startsWith('lock:') && l.includes(`:${ino} `)));
    } catch {
      // fd closed meanwhile
    }
  }
  return out;
}

async function acquireResult(image: string, mode: OpenerMode, format: Format): Promise<{ ok: true; lock: ImageLock } | { ok: false; err: LockConflictError }> {
  try {
    return { ok: true, lock: await acquire(image, equivalentRequest(mode, format)) };
  } catch (err) {
    if (err instanceof LockConflictError) return { ok: false, err };
    throw err;
  }
}

// iotest 153: which second opener fails, and with which message, for each holder mode (qcow2).
const MATRIX_153: Record<OpenerMode, Record<OpenerMode, string | null>> = {
  rw: { rw: 'Failed to get "write" lock', ro: 'Failed to get shared "write" lock', 'force-share': null },
  ro: { rw: 'Failed to get "write" lock', ro: null, 'force-share': null },
  'force-share': { rw: null, ro: null, 'force-share': null },
};

describe('locking: acquire speaks QEMU\'s protocol', function () {
  describe('as a second opener, it fails exactly where qemu-io fails, with its message (iotest 153 matrix)', () => {
    for (const format of ['qcow2', 'raw'] as Format[]) {
      for (const holderMode of OPENER_MODES) {
        it(`${format}, held by ${HOLDER_OF_MODE[holderMode]}`, async () => {
          const image = await makeImage(format);
          await startHolder(HOLDER_OF_MODE[holderMode], image, format);
          for (const mode of OPENER_MODES) {
            const qemu = await qemuIoOpen(mode, image, format);
            const ours = await guardImages([image], () => acquireResult(image, mode, format));
            if (ours.ok) {
              assert.equal(qemu.exitCode, 0, `${mode}: we got the locks, qemu-io did not:\n${qemu.stderr}`);
              await ours.lock.release();
            } else {
              assert.notEqual(qemu.exitCode, 0, `${mode}: qemu-io opened, we got: ${ours.err.message}`);
              assert.equal(qemu.stderr, `qemu-io: can't open device ${image}: ${ours.err.qemuMessage}\n`, mode);
              assert.equal(ours.err.userFacing, true);
            }
            if (format === 'qcow2') {
              const expected = MATRIX_153[holderMode][mode];
              if (expected === null) assert.ok(ours.ok, `${mode} against ${holderMode} should open`);
              else assert.equal(!ours.ok && ours.err.qemuMessage, `${expected}\nIs another process using the image [${image}]?`);
            }
            // Whatever happened, nothing of ours is left on the image.
            assert.deepEqual(ourFdinfoLocks(image), []);
          }
        });
      }
    }
  });

  it('takes the bytes QEMU would, names the holder in the error, and leaves nothing behind', async () => {
    const image = await makeImage('qcow2');
    await guardImages([image], async () => {
      const lock = await acquire(image, equivalentRequest('rw', 'qcow2'));
      assert.deepEqual(lock.lockedBytes, [100, 101, 103, 201, 203]);
      assert.equal(lock.api, 'OFD');
      assert.deepEqual(lock.permissions, { perm: ['consistent read', 'write', 'resize'], shared: ['consistent read', 'write unchanged'] });
      assert.equal(ourFdinfoLocks(image).length, 4, 'kernel merges 100-101');
      const seen = await probe(image);
      assert.deepEqual(seen.heldBytes, [100, 101, 103, 201, 203]);
      assert.deepEqual(seen.holders.map((h) => [h.pid, h.fd, h.kind]), [[process.pid, lock.fd, 'OFD']]);
      await lock.release();
      await lock.release(); // idempotent
      assert.deepEqual(procLocksOn(image), []);
      assert.deepEqual((await probe(image)).heldBytes, []);
    });
  });

  it('error text and holders: qemu-io -r holds, we want to write', async () => {
    const image = await makeImage('qcow2');
    const holder = await startHolder('qemu-io -r', image, 'qcow2');
    const err = await guardImages([image], () => acquire(image, equivalentRequest('rw', 'qcow2')).then(() => undefined, (e: unknown) => e));
    assert.ok(err instanceof LockConflictError);
    assert.equal(err.qemuMessage, `Failed to get "write" lock\nIs another process using the image [${image}]?`);
    assert.equal(err.byte, 201);
    assert.equal(err.permission, 'write');
    assert.equal(err.role, 'unshare');
    assert.deepEqual(err.holders.map((h) => [h.pid, h.command, h.kind]), [[holder.pid, 'qemu-io', 'OFD']]);
    assert.equal(err.message, `${err.qemuMessage}\nByte 201 is held by qemu-io (pid ${holder.pid}) [fd ${err.holders[0].fd}, OFD lock].`);
    // Rolled back: the holder's bytes only.
    assert.deepEqual(procLocksOn(image).length, 3);
    assert.deepEqual(ourFdinfoLocks(image), []);
  });

  it('a symlink to a held image conflicts (locks belong to the inode)', async () => {
    const image = await makeImage('qcow2');
    const link = join(scratchDir('link'), 'link.qcow2');
    symlinkSync(image, link);
    const holder = await startHolder('qemu-io', image, 'qcow2');
    const err = await guardImages([image], () => acquire(link, equivalentRequest('ro', 'qcow2')).then(() => undefined, (e: unknown) => e));
    assert.ok(err instanceof LockConflictError);
    const qemu = await qemuIoOpen('ro', link, 'qcow2');
    assert.equal(qemu.stderr, `qemu-io: can't open device ${link}: ${err.qemuMessage}\n`);
    assert.equal(err.qemuMessage, `Failed to get shared "write" lock\nIs another process using the image [${link}]?`);
    assert.equal(err.holders[0].pid, holder.pid);
    const seen = await probe(link);
    assert.deepEqual(seen.holders.map((h) => h.pid), [holder.pid]);
    // And the other way round: we hold through the link, QEMU opens the image.
    await holder.stop();
    const lock = await acquire(link, equivalentRequest('ro', 'qcow2'));
    const rw = await qemuIoOpen('rw', image, 'qcow2');
    assert.equal(rw.stderr, `qemu-io: can't open device ${image}: Failed to get "write" lock\nIs another process using the image [${image}]?\n`);
    await lock.release();
  });

  describe('change(): QEMU\'s prepare / commit / abort', () => {
    it('raising conflicts: rolls back exactly to the bytes held before', async () => {
      const image = await makeImage('qcow2');
      const lock = await acquire(image, equivalentRequest('ro', 'qcow2'));
      await startHolder('qemu-io -r -U', image, 'qcow2'); // 100 only: compatible with our read-only set
      assert.deepEqual(fdLockRanges(lock.fd), ['100-100', '201-201', '203-203']);
      // A second holder that refuses to share write makes our raise fail.
      const other = await acquire(image, { perm: ['consistent read'], shared: ['consistent read'] });
      const err = await lock.change(equivalentRequest('rw', 'qcow2')).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof LockConflictError, String(err));
      assert.equal(err.qemuMessage, `Failed to get "write" lock\nIs another process using the image [${image}]?`);
      assert.deepEqual(err.holders.map((h) => [h.pid, h.fd]), [[process.pid, other.fd]]);
      // Back to exactly what we held: 101 and 103, locked for the attempt, are gone again.
      assert.deepEqual(lock.lockedBytes, [100, 201, 203]);
      assert.deepEqual(fdLockRanges(lock.fd), ['100-100', '201-201', '203-203']);
      assert.deepEqual(lock.permissions, equivalentRequest('ro', 'qcow2'));
      await other.release();
      await lock.release();
    });

    it('raising and lowering without conflict: union first, then only the new set', async () => {
      const image = await makeImage('qcow2');
      await guardImages([image], async () => {
        const lock = await acquire(image, equivalentRequest('ro', 'qcow2'));
        assert.equal((await qemuIoOpen('ro', image, 'qcow2')).exitCode, 0);
        await lock.change(equivalentRequest('rw', 'qcow2'));
        assert.deepEqual(lock.lockedBytes, [100, 101, 103, 201, 203]);
        assert.match((await qemuIoOpen('ro', image, 'qcow2')).stderr, /Failed to get shared "write" lock/);
        await lock.change(equivalentRequest('ro', 'qcow2'));
        assert.deepEqual(lock.lockedBytes, [100, 201, 203]);
        assert.equal((await qemuIoOpen('ro', image, 'qcow2')).exitCode, 0);
        await lock.change({ perm: [], shared: ['consistent read', 'write', 'write unchanged', 'resize'] });
        assert.deepEqual(lock.lockedBytes, []);
        assert.equal((await qemuIoOpen('rw', image, 'qcow2')).exitCode, 0);
        await lock.release();
        await assert.rejects(lock.change(equivalentRequest('ro', 'qcow2')), /already released/);
      });
    });
  });

  it('a byte someone write-locks: QEMU\'s "Failed to lock byte N", its holder, and nothing of ours left', async () => {
    const image = await makeImage('raw');
    // QEMU never takes write locks; a POSIX write lock on byte 101 from another program (Python's fcntl).
    const py = await holdForeignWriteLock(image, 101, 1);
    const err = await guardImages([image], () => acquire(image, equivalentRequest('rw', 'raw')).then(() => undefined, (e: unknown) => e));
    assert.ok(err instanceof LockByteError, String(err));
    assert.equal(err.qemuMessage, 'Failed to lock byte 101');
    const qemu = await qemuIoOpen('rw', image, 'raw');
    assert.equal(qemu.stderr, `qemu-io: can't open device ${image}: ${err.qemuMessage}\n`);
    assert.deepEqual(err.holders.map((h) => [h.pid, h.command, h.kind]), [[py.pid, 'python3', 'POSIX']]);
    assert.deepEqual(ourFdinfoLocks(image), [], 'byte 100 was rolled back');
    const seen = await probe(image);
    assert.deepEqual(seen.heldBytes, [101]);
    assert.deepEqual(seen.holders.map((h) => [h.pid, h.kind, h.uses]), [[py.pid, 'POSIX', ['write']]]);
  });

  it('backing chains: overlays over one base both open; the base cannot be opened for write meanwhile', async () => {
    const base = await makeImage('qcow2', 'base.qcow2');
    const o1 = await makeOverlay(base, 'qcow2', 'o1.qcow2');
    const o2 = await makeOverlay(base, 'qcow2', 'o2.qcow2');
    await startHolder('qemu-io', o1, 'qcow2');
    await guardImages([base, o2], async () => {
      const lock = await acquire(o2, equivalentRequest('rw', 'qcow2'));
      const baseLock = await acquire(base, equivalentRequest('ro', 'qcow2')); // what QEMU takes on a backing file
      const err = await acquire(base, equivalentRequest('rw', 'qcow2')).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof LockConflictError);
      assert.equal(err.qemuMessage, `Failed to get "write" lock\nIs another process using the image [${base}]?`);
      const qemu = await qemuIoOpen('rw', base, 'qcow2');
      assert.equal(qemu.stderr, `qemu-io: can't open device ${base}: ${err.qemuMessage}\n`);
      await baseLock.release();
      await lock.release();
    });
  });

  describe('POSIX locks (QEMU\'s fallback where the kernel lacks OFD locks)', () => {
    it('QEMU honours them; one holder per image per process; released on release()', async () => {
      const image = await makeImage('qcow2');
      await guardImages([image], async () => {
        const lock = await acquire(image, { ...equivalentRequest('ro', 'qcow2'), api: 'POSIX' });
        assert.equal(lock.api, 'POSIX');
        assert.deepEqual(lock.warnings, [], 'the fallback warning is for kernels without OFD only');
        const lines = procLocksOn(image);
        assert.equal(lines.length, 3);
        assert.ok(lines.every((l) => l.includes(`POSIX  ADVISORY  READ ${process.pid} `)), lines.join('\n'));
        const qemu = await qemuIoOpen('rw', image, 'qcow2');
        assert.equal(qemu.stderr, `qemu-io: can't open device ${image}: Failed to get "write" lock\nIs another process using the image [${image}]?\n`);
        // Probing from this process must not close an fd of the image (that would drop our POSIX locks).
        const seen = await probe(image);
        assert.deepEqual(seen.holders.map((h) => [h.pid, h.kind, h.bytes]), [[process.pid, 'POSIX', [100, 201, 203]]]);
        assert.equal(procLocksOn(image).length, 3);
        await assert.rejects(acquire(image, equivalentRequest('ro', 'qcow2')), /already holds POSIX locks/);
        assert.equal(procLocksOn(image).length, 3);
        await lock.release();
        assert.deepEqual(procLocksOn(image), []);
      });
    });
  });

  it('refuses unknown permissions and "change children" (gone in QEMU 7.2) before opening anything', async () => {
    const image = await makeImage('raw');
    await assert.rejects(acquire(image, { perm: ['change children'], shared: [] }), /no longer exists in QEMU 7.2/);
    await assert.rejects(acquire(image, { perm: ['bogus' as 'write'], shared: [] }), /unknown permission "bogus"/);
    assert.deepEqual(procLocksOn(image), []);
  });

  it('works on an image held through a path with spaces and non-ASCII characters', async () => {
    const image = await makeImage('qcow2', 'disk ü 雪 image.qcow2', scratchDir('space dir é'));
    const holder = await startHolder('qemu-io', image, 'qcow2');
    const seen = await guardImages([image], () => probe(image));
    assert.deepEqual(seen.heldBytes, [100, 101, 103, 201, 203]);
    assert.equal(seen.holders[0].pid, holder.pid);
    const err = await acquire(image, equivalentRequest('ro', 'qcow2')).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof LockConflictError);
    assert.equal((await qemuIoOpen('ro', image, 'qcow2')).stderr, `qemu-io: can't open device ${image}: ${err.qemuMessage}\n`);
  });
});

