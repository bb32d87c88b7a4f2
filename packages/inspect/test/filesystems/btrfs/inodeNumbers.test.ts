/** Inode numbers across subvolumes: unique, below 2^53, and an objectid out of range is an UnsafeNumberError, never a collision. */
import assert from 'node:assert/strict';
import { UnsafeNumberError } from '@guestlens/block';
import { InodeNumbers } from '../../../src/filesystems/btrfs/inodeNumbers.ts';

describe('btrfs inode numbers', () => {
  const n = new InodeNumbers(256n, [5n, 256n, 257n, 300n]);

  it('keeps the shown subvolume\'s objectids and maps the others above 2^52, round trip', () => {
    assert.equal(n.encode(256n, 256n), 256);
    const seen = new Set<number>();
    for (const tree of [5n, 256n, 257n, 300n]) {
      for (const obj of [256n, 257n, 1n << 39n]) {
        const ino = n.encode(tree, obj);
        assert.ok(Number.isSafeInteger(ino));
        assert.ok(!seen.has(ino));
        seen.add(ino);
        assert.deepEqual(n.decode(ino), { tree, objectid: obj });
      }
    }
  });

  it('refuses objectids that would collide or pass 2^53', () => {
    assert.throws(() => n.encode(256n, 1n << 52n), UnsafeNumberError);
    assert.throws(() => n.encode(257n, 1n << 40n), UnsafeNumberError);
    assert.throws(() => n.encode(999n, 256n), UnsafeNumberError);
    assert.equal(n.decode(2 ** 53), undefined);
  });
});
