/**
 * ls output for directories a guest can make huge: `ls -l` of 300,000
 * entries (its column widths were a Math.max(...list), past the stack's
 * argument limit), and `ls --json` written an element at a time, byte for
 * byte what one JSON.stringify of the whole array prints.
 */
import assert from 'node:assert/strict';
import { lsLa, type LlEntry } from '../src/files/virtLs.ts';
import { jsonArrayWriter } from '../src/output/print.ts';

const t = { sec: 1_700_000_000, nsec: 0 };

describe('ls output for huge directories', () => {
  it('ls -l of 300,000 entries (past the ~125,000 arguments a spread call takes): one line each, widths from the widest', () => {
    const file: LlEntry = { rawName: Buffer.from('f'), stat: { ino: 12, type: 'file', mode: 0o100644, nlink: 1, uid: 0, gid: 0, size: 7, blocks: 8, atime: t, mtime: t, ctime: t } };
    const entries = Array.from({ length: 300_000 }, () => file);
    entries.push({ ...file, stat: { ...file.stat, size: 123456789, uid: 100000 } });
    const out = lsLa(entries, t.sec + 60);
    const lines = out.split('\n');
    assert.equal(lines.length, 300_001 + 2); // total, the entries, the empty string after the final newline
    assert.equal(lines[1], '-rw-r--r-- 1 0      0         7 Nov 14 22:13 f');
    assert.equal(lines.at(-2), '-rw-r--r-- 1 100000 0 123456789 Nov 14 22:13 f');
  });

  it('a JSON array written element by element equals JSON.stringify(array, null, 2)', () => {
    const arrays: unknown[][] = [[], [1], [{ a: 'x\ny', b: [1, { c: [] }], d: {} }, 'two', null, { e: { f: [true, 'g'] } }]];
    for (const array of arrays) {
      let out = '';
      const w = jsonArrayWriter((s) => (out += s));
      for (const v of array) w.push(v);
      w.end();
      assert.equal(out, `${JSON.stringify(array, null, 2)}\n`);
    }
  });
});
