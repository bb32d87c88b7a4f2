/**
 * Backing names resolved as QEMU resolves them, and QEMU's JSON dialect.
 * (The same rules are checked end to end against qemu-img in chain.test.ts.)
 */
import assert from 'node:assert/strict';
import { flattenOptions, parseQemuJson, Qcow2Error, resolveBackingName } from '../../src/index.ts';

const IMAGE = '/images/vm/top.qcow2';

describe('qcow2-js backing names', () => {
  describe("QEMU's JSON", () => {
    it('reads single-quoted strings, \\\' escapes, unicode escapes and surrogate pairs', () => {
      const plain = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;
      assert.deepEqual(plain(parseQemuJson(`{'a':'it\\'s "x"', "b": "\\u00e9\\ud83d\\ude00\\/", 'c': [1, -2.5e1, true, null]}`)), {
        a: 'it\'s "x"',
        b: 'é😀/',
        c: [1, -25, true, null],
      });
      // "__proto__" is an ordinary key, not a way to reach Object.prototype.
      const parsed = parseQemuJson('{"__proto__":{"polluted":1}}') as Record<string, unknown>;
      assert.deepEqual(plain(parsed.__proto__), { polluted: 1 });
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });

    it('rejects what QEMU rejects: control characters, \\u0000, duplicate keys, trailing text', () => {
      for (const text of ['{"a":"x\ny"}', '{"a":"\\u0000"}', '{"a":1,"a":2}', '{"a":1} x', '{"a":1,}', "{'a':'unterminated}"]) {
        assert.throws(() => parseQemuJson(text), /at character/, text);
      }
    });

    it('flattens nested objects and lists into dotted keys, refusing a key given twice', () => {
      const flat = flattenOptions(parseQemuJson('{"driver":"qcow2","file":{"driver":"file","filename":"/x","cache":{"direct":true}},"l":[7,8]}') as Record<string, never>);
      assert.deepEqual([...flat], [
        ['driver', 'qcow2'],
        ['file.driver', 'file'],
        ['file.filename', '/x'],
        ['file.cache.direct', true],
        ['l.0', 7],
        ['l.1', 8],
      ]);
      assert.throws(() => flattenOptions(parseQemuJson('{"file":{"filename":"/x"},"file.filename":"/y"}') as Record<string, never>), /given twice/);
    });
  });

  describe('resolveBackingName', () => {
    it('joins a relative name to the directory of the image that names it', () => {
      assert.deepEqual(resolveBackingName('base.qcow2', IMAGE, 'qcow2', IMAGE), { format: 'qcow2', filename: '/images/vm/base.qcow2' });
      assert.deepEqual(resolveBackingName('../b/base.raw', IMAGE, 'raw', IMAGE), { format: 'raw', filename: '/images/b/base.raw' });
      assert.deepEqual(resolveBackingName('/abs/base.qcow2', IMAGE, undefined, IMAGE), { format: undefined, filename: '/abs/base.qcow2' });
      // A colon after a slash is part of a file name, not a protocol.
      assert.deepEqual(resolveBackingName('dir/a:b.qcow2', IMAGE, 'qcow2', IMAGE), { format: 'qcow2', filename: '/images/vm/dir/a:b.qcow2' });
    });

    it('strips the file: protocol (the name is then relative to the working directory, as in QEMU)', () => {
      assert.deepEqual(resolveBackingName('file:base.qcow2', IMAGE, 'qcow2', IMAGE), { format: 'qcow2', filename: 'base.qcow2' });
    });

    it('takes format and file from json:, the backing-format extension winning over "driver"', () => {
      const name = 'json:{"driver":"qcow2","file":{"driver":"file","filename":"/g/disk img,\\"1\\".qcow2","locking":"off","aio":"threads"},"cache":{"no-flush":true}}';
      assert.deepEqual(resolveBackingName(name, IMAGE, undefined, IMAGE), { format: 'qcow2', filename: '/g/disk img,"1".qcow2' });
      assert.deepEqual(resolveBackingName(name, IMAGE, 'raw', IMAGE), { format: 'raw', filename: '/g/disk img,"1".qcow2' });
      assert.deepEqual(resolveBackingName("json:{'driver':'raw','file.filename':'/g/d','offset':'512','size':4096}", IMAGE, undefined, IMAGE), { format: 'raw', filename: '/g/d', offset: 512, size: 4096 });
      assert.deepEqual(resolveBackingName('json:{"driver":"file","filename":"/dev/sdz"}', IMAGE, undefined, IMAGE), { format: 'raw', filename: '/dev/sdz' });
      assert.deepEqual(resolveBackingName('json:{"driver":"qcow2","file.filename":"/a","backing":null}', IMAGE, undefined, IMAGE), { format: 'qcow2', filename: '/a', backing: null });
      assert.deepEqual(resolveBackingName('json:{"driver":"qcow2","file.filename":"/a","backing":{"driver":"raw","file":{"filename":"/b"}}}', IMAGE, undefined, IMAGE), {
        format: 'qcow2',
        filename: '/a',
        backing: { format: 'raw', filename: '/b' },
      });
    });

    it('refuses network protocols, node references and options that would change the bytes, naming the image', () => {
      for (const [name, pattern] of [
        ['nbd:unix:/run/nbd.sock', /"nbd" protocol/],
        ['https://example.com/disk.qcow2', /"https" protocol/],
        ['json:{"driver":"qcow2","file":{"driver":"rbd","pool":"p","image":"i"}}', /"rbd" protocol/],
        ['json:{"driver":"qcow2","file":"node0"}', /refers to a block node/],
        ['json:{"driver":"qcow2","file.filename":"/a","backing":"node1"}', /refers to a block node as its backing/],
        ['json:{"driver":"qcow2","file.filename":"/a","data-file":"/b"}', /sets option "data-file"/],
        ['json:{"driver":"qcow2"}', /names no file/],
        ['json:[1]', /not a JSON object/],
        ['json:{"driver":', /not valid JSON/],
      ] as const) {
        assert.throws(() => resolveBackingName(name, IMAGE, undefined, IMAGE), (err: unknown) => err instanceof Qcow2Error && err.message.startsWith(`${IMAGE}: `) && pattern.test(err.message), name);
      }
    });
  });
});
