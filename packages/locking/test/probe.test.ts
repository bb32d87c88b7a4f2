import assert from 'node:assert/strict';
import { probe, type ProbeResult } from '@guestlens/locking';
import { guardImages } from '../../../test/support/imageGuard.ts';
import { startTracked, waitFor } from '../../../test/support/processes.ts';
import { EXPECTED_BYTES, HOLDER_KINDS, startHolder } from '../../../test/support/qemuHolders.ts';
import { makeImage, makeOverlay, type Format } from './support/images.ts';
import { holdForeignWriteLock } from './support/foreignLock.ts';

/** The ten bytes' held flags, as the set of held bytes. */
function heldOf(r: ProbeResult): number[] {
  return r.bytes.filter((b) => b.held).map((b) => b.byte);
}

describe('locking: probe against real QEMU holders', function () {
  for (const format of ['qcow2', 'raw'] as Format[]) {
    for (const kind of HOLDER_KINDS) {
      const expected = EXPECTED_BYTES[kind][format];
      it(`${kind} on ${format}: bytes ${expected.join(',')}, holder named`, async () => {
        const image = await makeImage(format);
        const holder = await startHolder(kind, image, format);
        const result = await guardImages([image], () => probe(image));
        assert.deepEqual(heldOf(result), expected);
        assert.deepEqual(result.heldBytes, expected);
        assert.equal(result.bytes.length, 10);
        assert.deepEqual(result.bytes.map((b) => b.byte), [100, 101, 102, 103, 104, 200, 201, 202, 203, 204]);
        assert.equal(result.holders.length, 1, JSON.stringify(result.holders));
        const [h] = result.holders;
        assert.equal(h.pid, holder.pid);
        assert.equal(h.command, holder.command);
        assert.equal(h.kind, 'OFD');
        assert.equal(typeof h.fd, 'number');
        assert.deepEqual(h.bytes, expected);
        for (const b of result.bytes) {
          assert.deepEqual(b.holders.map((x) => x.pid), b.held ? [holder.pid] : [], `byte ${b.byte}`);
        }
        // Decoding: use bytes are what it uses, unshare bytes what it refuses to share.
        const names = ['consistent read', 'write', 'write unchanged', 'resize'];
        assert.deepEqual(h.uses, expected.filter((b) => b < 200).map((b) => names[b - 100]));
        assert.deepEqual(h.refusesToShare, expected.filter((b) => b >= 200).map((b) => names[b - 200]));
        const label = `${holder.command} (pid ${holder.pid})`;
        const writes = expected.includes(101) || expected.includes(103);
        assert.equal(result.verdict, `in use ${writes ? 'read-write' : 'read-only'} by ${label}: ${
          writes ? 'reading needs an overlay' : expected.includes(201) || expected.includes(203) ? 'reading is fine, writing is refused' : 'it shares everything: others may read and write'
        }`);
        await holder.stop();
        const after = await probe(image);
        assert.deepEqual(after.heldBytes, []);
        assert.equal(after.verdict, 'free');
      });
    }
  }

  it('reports "free" with every byte unheld on an image nobody opened', async () => {
    const image = await makeImage('qcow2');
    const result = await guardImages([image], () => probe(image));
    assert.equal(result.verdict, 'free');
    assert.ok(result.bytes.every((b) => !b.held && b.holders.length === 0));
    assert.deepEqual(result.holders, []);
  });

  for (const baseFormat of ['qcow2', 'raw'] as Format[]) {
    const baseBytes = baseFormat === 'qcow2' ? [100, 201, 203] : [100];
    it(`the ${baseFormat} backing file of an overlay held read-write: ${baseBytes.join(',')} on the base`, async () => {
      const base = await makeImage(baseFormat, `base.${baseFormat}`);
      const overlay = await makeOverlay(base, baseFormat);
      const holder = await startHolder('qsd writable', overlay, 'qcow2');
      const [b, o] = await guardImages([base], () => Promise.all([probe(base), probe(overlay)]));
      assert.deepEqual(b.heldBytes, baseBytes);
      assert.deepEqual(o.heldBytes, [100, 101, 103, 201, 203]);
      assert.deepEqual(b.holders.map((h) => [h.pid, h.command]), [[holder.pid, 'qemu-storage-daemon']]);
      const consequence = baseFormat === 'qcow2' ? 'reading is fine, writing is refused' : 'it shares everything: others may read and write';
      assert.equal(b.verdict, `in use read-only by qemu-storage-daemon (pid ${holder.pid}): ${consequence}`);
    });
  }

  it('lists every holder when several QEMUs share an image', async () => {
    const image = await makeImage('qcow2');
    const a = await startHolder('qemu-io -r', image, 'qcow2');
    const b = await startHolder('qemu-nbd --read-only', image, 'qcow2');
    const result = await guardImages([image], () => probe(image));
    assert.deepEqual(result.heldBytes, [100, 201, 203]);
    assert.deepEqual(result.holders.map((h) => h.pid), [a.pid, b.pid].sort((x, y) => x - y));
    assert.deepEqual(result.bytes.find((x) => x.byte === 201)!.holders.map((h) => h.pid).sort(), [a.pid, b.pid].sort());
    assert.match(result.verdict, /^in use read-only by (qemu-io|qemu-nbd) \(pid \d+\) and (qemu-io|qemu-nbd) \(pid \d+\): reading is fine, writing is refused$/);
  });

  it('a whole-file POSIX write lock from another program: every byte held, holder named from /proc/locks and fdinfo', async () => {
    const image = await makeImage('raw');
    // lockf(fd, F_LOCK, 0) locks from offset 0 to EOF: /proc/locks prints "0 EOF".
    const py = await holdForeignWriteLock(image);
    const result = await guardImages([image], () => probe(image));
    assert.deepEqual(result.heldBytes, [100, 101, 102, 103, 104, 200, 201, 202, 203, 204]);
    assert.deepEqual(result.holders.map((h) => [h.pid, h.command, h.kind, typeof h.fd]), [[py.pid, 'python3', 'POSIX', 'number']]);
    assert.deepEqual(result.holders[0].uses, ['consistent read', 'write', 'write unchanged', 'resize', 'change children']);
    assert.equal(result.verdict, `in use read-write by python3 (pid ${py.pid}): reading needs an overlay`);
  });
});
