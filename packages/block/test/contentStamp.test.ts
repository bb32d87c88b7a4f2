/**
 * contentStamp: the token that says a host file may have changed. It must
 * change with every write, truncation and replacement of the bytes, and
 * refuse to vouch for a file changed just now (a coarse mtime tick) or for
 * files whose times do not follow writes (devices, procfs).
 */
import assert from 'node:assert/strict';
import { appendFileSync, closeSync, mkdirSync, openSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { contentStamp, SETTLE_MS } from '../src/contentStamp.ts';
import { scratchDir } from '../../../test/support/scratch.ts';

describe('contentStamp: has an open host file changed?', () => {
  const later = () => Date.now() + SETTLE_MS + 1000;

  it('changes with every write, growth, truncation and same-size overwrite; equal while untouched', () => {
    const dir = scratchDir('content-stamp');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'image.raw');
    writeFileSync(path, Buffer.alloc(65536, 1));
    const fd = openSync(path, 'r');
    try {
      const seen = new Set<string>();
      const stamp = () => {
        const s = contentStamp(fd, later());
        assert.ok(s !== undefined, 'a regular file on a local filesystem is stamped');
        return s;
      };
      const first = stamp();
      assert.equal(stamp(), first, 'untouched: the same token');
      seen.add(first);
      const changes: [string, () => void][] = [
        ['an overwrite of the same size', () => { const w = openSync(path, 'r+'); writeSync(w, Buffer.from([2]), 0, 1, 4096); closeSync(w); }],
        ['an append', () => appendFileSync(path, 'x')],
        ['a truncation', () => truncateSync(path, 4096)],
        ['a rewrite to the same bytes', () => { const w = openSync(path, 'r+'); writeSync(w, Buffer.from([1]), 0, 1, 0); closeSync(w); }],
      ];
      for (const [what, change] of changes) {
        change();
        const s = stamp();
        assert.ok(!seen.has(s), `${what} changes the token`);
        seen.add(s);
      }
    } finally {
      closeSync(fd);
    }
  });

  it('vouches for nothing changed within SETTLE_MS, nor for devices and procfs files', () => {
    const dir = scratchDir('content-stamp-fresh');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'fresh.raw');
    writeFileSync(path, 'just written');
    const fd = openSync(path, 'r');
    const devNull = openSync('/dev/null', 'r');
    const proc = openSync('/proc/self/status', 'r');
    try {
      assert.equal(contentStamp(fd), undefined, 'changed just now: a write in the same clock tick would not move mtime');
      assert.ok(contentStamp(fd, later()) !== undefined);
      assert.equal(contentStamp(devNull, later()), undefined, 'a device');
      assert.equal(contentStamp(proc, later()), undefined, 'procfs');
      assert.equal(contentStamp(987654, later()), undefined, 'a closed descriptor');
    } finally {
      for (const f of [fd, devNull, proc]) closeSync(f);
    }
  });
});
