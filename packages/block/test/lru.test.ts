import assert from 'node:assert/strict';
import { BoundedLru } from '../src/index.ts';

describe('block: BoundedLru', () => {
  it('evicts the least recently used entry first, by weight', () => {
    const lru = new BoundedLru<string, Buffer>(10, (b) => b.length);
    lru.set('a', Buffer.alloc(4));
    lru.set('b', Buffer.alloc(4));
    assert.ok(lru.get('a'), 'a is now the most recent');
    lru.set('c', Buffer.alloc(4));
    assert.deepEqual([...lru.keys()], ['a', 'c']);
    assert.equal(lru.weight, 8);
    assert.equal(lru.size, 2);
  });

  it('counts entries when no weight function is given', () => {
    const lru = new BoundedLru<number, string>(2);
    lru.set(1, 'one');
    lru.set(2, 'two');
    lru.set(3, 'three');
    assert.equal(lru.has(1), false);
    assert.equal(lru.peek(2), 'two');
    assert.equal(lru.size, 2);
  });

  it('keeps a single entry heavier than the whole budget (the newest is never evicted)', () => {
    const lru = new BoundedLru<string, Buffer>(4, (b) => b.length);
    lru.set('small', Buffer.alloc(2));
    lru.set('huge', Buffer.alloc(100));
    assert.deepEqual([...lru.keys()], ['huge']);
    assert.equal(lru.weight, 100);
  });

  it('peek does not touch recency; set of an existing key replaces its weight', () => {
    const lru = new BoundedLru<string, Buffer>(8, (b) => b.length);
    lru.set('a', Buffer.alloc(4));
    lru.set('b', Buffer.alloc(4));
    lru.peek('a');
    lru.set('a', Buffer.alloc(2));
    assert.equal(lru.weight, 6);
    lru.set('c', Buffer.alloc(4));
    assert.deepEqual([...lru.keys()], ['a', 'c'], 'b was least recent once a was set again');
  });

  it('delete with a value removes only that value (a failed load removing itself)', () => {
    const lru = new BoundedLru<string, object>(4);
    const first = {};
    const second = {};
    lru.set('k', first);
    lru.set('k', second);
    assert.equal(lru.delete('k', first), false);
    assert.equal(lru.peek('k'), second);
    assert.equal(lru.delete('k', second), true);
    assert.equal(lru.size, 0);
  });

  it('deleteWhere and clear keep the weight right', () => {
    const lru = new BoundedLru<string, Buffer>(100, (b) => b.length);
    for (const k of ['1:a', '1:b', '2:a']) lru.set(k, Buffer.alloc(10));
    lru.deleteWhere((k) => k.startsWith('1:'));
    assert.deepEqual([...lru.keys()], ['2:a']);
    assert.equal(lru.weight, 10);
    lru.clear();
    assert.equal(lru.weight, 0);
    assert.equal(lru.size, 0);
  });

  it('refuses a negative budget', () => {
    assert.throws(() => new BoundedLru(-1), RangeError);
  });
});
