/**
 * The reader against hivex, on hives hivexregedit built: every key and every
 * value's type and bytes as `hivexregedit --export` shows them, values as
 * `hivexget` decodes them, key times and key node offsets as `hivexml`
 * lists them; then the same on a copy holding big data records, an index
 * root over li/lf/lh leaves and class names (structures hivex reads but
 * never writes), read both from a Buffer and from a BlockSource.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { openHive, filetimeToIso, RegfValueTypeError, type Hive, type RegistryKey } from '../src/index.ts';
import { exportHive, hivexget, hivexmlNodes, hivexUnavailable } from './hivex.ts';
import { BIG_VALUES, TYPES_FILETIME, buildCorpus, DEEP, MANY, ROOTED, UNICODE_KEYS, type Corpus } from './corpus.ts';
import { guardImages } from '../../../test/support/imageGuard.ts';
import { MemorySource } from '../../../test/support/memorySource.ts';

async function walkAll(hive: Hive): Promise<Map<string, RegistryKey>> {
  const keys = new Map<string, RegistryKey>();
  for await (const key of hive.walk()) {
    assert.ok(!keys.has(key.path), `${key.path} twice`);
    keys.set(key.path, key);
  }
  return keys;
}

/** Every key and value hivexregedit exports, and nothing else, with the same types and bytes. */
async function assertSameAsExport(path: string, hive: Hive): Promise<number> {
  const exported = await exportHive(path);
  const ours = await walkAll(hive);
  assert.deepEqual([...ours.keys()].sort(), [...exported.keys()].sort());
  let values = 0;
  for (const [keyPath, exp] of exported) {
    const key = ours.get(keyPath)!;
    const vs = await key.values();
    assert.deepEqual(vs.map((v) => v.name).sort(), [...exp.values.keys()].sort(), `values of ${keyPath}`);
    assert.equal(key.valueCount, vs.length);
    for (const v of vs) {
      const e = exp.values.get(v.name)!;
      assert.equal(v.type, e.type, `type of ${keyPath} ${v.name}`);
      const data = await v.bytes();
      assert.ok(data.equals(e.bytes), `data of ${keyPath} ${JSON.stringify(v.name)}: ${data.length} bytes vs hivex's ${e.bytes.length}`);
      assert.equal(v.dataLength, data.length);
      values++;
    }
  }
  return values;
}

describe('regf: hives built by hivexregedit, read as hivex reads them', function () {
  this.timeout(180_000);
  let corpus: Corpus;

  before(async function () {
    const why = await hivexUnavailable();
    if (why) {
      console.log(`      ${why}: skipped`);
      this.skip();
    }
    corpus = await buildCorpus();
  });

  it('every key and value of the plain hive, as hivexregedit --export shows them', async () => {
    await guardImages([corpus.plain], async () => {
      const hive = await openHive(await readFile(corpus.plain), { name: corpus.plain });
      assert.equal(hive.dirty, false);
      assert.deepEqual(hive.dirtyReasons, []);
      assert.equal(hive.version, '1.5');
      const values = await assertSameAsExport(corpus.plain, hive);
      assert.ok(values > 50, `only ${values} values compared`);
      assert.deepEqual(hive.warnings, []);
      const many = (await hive.key('Many'))!;
      assert.equal(many.subkeyCount, MANY);
      assert.equal((await many.subkeys()).length, MANY);
      assert.equal((await hive.key(['Deep', ...Array.from({ length: DEEP - 1 }, (_, i) => `Level${i + 1}`)]))?.depth, DEEP);
    });
  });

  it('the edited hive (big data, an index root over li/lf/lh, class names), from a Buffer and from a BlockSource', async () => {
    await guardImages([corpus.edited], async () => {
      const data = await readFile(corpus.edited);
      const fromBuffer = await openHive(data, { name: corpus.edited });
      await assertSameAsExport(corpus.edited, fromBuffer);
      const source = new MemorySource(data, corpus.edited);
      const fromSource = await openHive(source, { limits: { cacheBytes: 64 * 1024 } });
      assert.equal(fromSource.name, corpus.edited);
      await assertSameAsExport(corpus.edited, fromSource);
      // Big values bypass the page cache; nothing else is read in large pieces.
      assert.ok(source.largestRead <= 64 * 1024, `largest read ${source.largestRead}`);
      for (const hive of [fromBuffer, fromSource]) {
        const big = (await hive.key('Big'))!;
        for (const [name, v] of Object.entries(BIG_VALUES)) {
          const value = (await big.value(name))!;
          assert.ok((await value.bytes()).equals(v.data), name);
        }
        assert.equal(await (await big.value('to-db-sz'))!.string(), 'big string ✓ '.repeat(1600));
        const rooted = (await hive.key('Rooted'))!;
        assert.equal((await rooted.subkeys()).length, ROOTED);
        // Lookups through each kind of leaf under the index root, in any case.
        for (const i of [0, 99, 100, 150, 199, 200, 299]) {
          const name = `Sub${String(i).padStart(3, '0')}`;
          assert.equal((await rooted.subkey(name.toLowerCase()))?.name, name);
        }
        assert.equal(await rooted.subkey('Sub300'), undefined);
        for (const [path, className] of Object.entries(corpus.classNames)) assert.equal(await (await hive.key(path))!.className(), className);
        assert.equal(await (await hive.key('Many'))!.className(), undefined);
      }
    });
  });

  it('values as hivexget decodes them', async () => {
    const hive = await openHive(await readFile(corpus.plain), { name: corpus.plain });
    const types = (await hive.key('\\Types'))!;
    for (const v of await types.values()) {
      if (['REG_SZ', 'REG_EXPAND_SZ', 'REG_LINK'].includes(v.typeName)) {
        assert.equal(await v.string(), await hivexget(corpus.plain, '\\Types', v.name === '' ? '@' : v.name), v.name);
      } else if (v.typeName === 'REG_MULTI_SZ') {
        const lines = (await hivexget(corpus.plain, '\\Types', v.name)).split('\n').filter((l) => l !== '');
        assert.deepEqual(await v.strings(), lines, v.name);
      } else if (v.typeName === 'REG_DWORD' || v.typeName === 'REG_DWORD_BIG_ENDIAN') {
        const d = await v.data();
        if (d.kind === 'dword') assert.equal(String(d.value | 0), await hivexget(corpus.plain, '\\Types', v.name), v.name);
        else await assert.rejects(() => v.dword(), (e: unknown) => e instanceof RegfValueTypeError && /bytes of data, not 4/.test(e.message));
      } else if (v.typeName === 'REG_QWORD') {
        const d = await v.data();
        if (d.kind === 'qword') assert.equal(String(BigInt.asIntN(64, d.value)), await hivexget(corpus.plain, '\\Types', v.name), v.name);
        else assert.equal(d.kind, 'bytes');
      }
    }
    assert.equal(await (await types.value('sz'))!.string(), 'hello, world');
    assert.equal(await (await types.value(''))!.string(), 'the default');
    assert.equal(await (await types.value('sz-junk-after-nul'))!.string(), 'A');
    assert.equal(await (await types.value('sz-odd-length'))!.string(), 'A');
    assert.deepEqual(await (await types.value('multi'))!.strings(), ['one', 'two', 'three']);
    assert.deepEqual(await (await types.value('multi-empty'))!.strings(), []);
    assert.deepEqual(await (await types.value('multi-unterminated'))!.strings(), ['x', 'y']);
    assert.equal(await (await types.value('dword'))!.dword(), 0xdeadbeef);
    assert.equal(await (await types.value('dword-be'))!.dword(), 0x12345678);
    assert.equal(await (await types.value('qword'))!.qword(), 0x8807060504030201n);
    assert.deepEqual(await (await types.value('unknown-type'))!.data(), { kind: 'bytes', value: Buffer.from([0xaa, 0xbb]) });
    assert.equal((await types.value('unknown-type-max'))!.typeName, '0xffffffff');
    assert.equal((await types.value('resource-list'))!.typeName, 'REG_RESOURCE_LIST');
    await assert.rejects(() => types.value('dword').then((v) => v!.string()), (e: unknown) => e instanceof RegfValueTypeError && /it is REG_DWORD, not a string/.test(e.message));
  });

  it('key times and key node offsets as hivexml lists them', async () => {
    const hive = await openHive(await readFile(corpus.plain), { name: corpus.plain });
    const nodes = await hivexmlNodes(corpus.plain);
    const ours: Array<{ name: string; mtime: string; fileOffset: number }> = [];
    for await (const key of hive.walk()) ours.push({ name: key.name, mtime: filetimeToIso(key.lastWrittenFiletime)!, fileOffset: key.cell + 4096 });
    assert.equal(ours.length, nodes.length);
    assert.deepEqual(ours, nodes);
    // The minimal hive's root keeps the time it had (2010); hivex does not stamp what it writes.
    assert.equal(filetimeToIso((await hive.root()).lastWrittenFiletime), '2010-02-02T13:42:44Z');
  });

  it('a key time to the 100 ns, as hivexml shows it to the second', async () => {
    const hive = await openHive(await readFile(corpus.edited), { name: corpus.edited });
    const types = (await hive.key('Types'))!;
    assert.equal(types.lastWrittenFiletime, TYPES_FILETIME);
    // 133500000001234567 × 100 ns after 1601 = 2024-01-17T21:20:00.1234567Z
    assert.deepEqual(types.lastWritten, { sec: 1705526400, nsec: 123456700 });
    const node = (await hivexmlNodes(corpus.edited)).find((n) => n.name === 'Types')!;
    assert.equal(node.mtime, '2024-01-17T21:20:00Z');
    assert.equal(filetimeToIso(types.lastWrittenFiletime), node.mtime);
  });

  it('looks keys and values up case-insensitively, Unicode names included', async () => {
    const hive = await openHive(await readFile(corpus.plain), { name: corpus.plain });
    for (const name of UNICODE_KEYS) {
      const key = await hive.key(name.toUpperCase().replace('SS', 'ß'));
      assert.equal(key?.name, name, `${name} by upper case`);
      assert.equal((await hive.key(name.toLowerCase()))?.name, name, `${name} by lower case`);
      assert.equal(await (await key!.value('NAME'))!.string(), name);
    }
    assert.equal((await hive.key('\\MANY\\K0042'))?.path, '\\Many\\k0042');
    assert.equal((await hive.key('many\\k1499'))?.name, 'k1499');
    assert.equal(await hive.key('many\\k1500'), undefined);
    assert.equal(await hive.key('Many\\k0042\\nothing'), undefined);
    assert.equal((await hive.key(''))?.path, '\\');
    assert.equal(await (await hive.value('types', 'mixedcase'))!.string(), 'case');
    assert.equal(await (await hive.value('types', 'ÜNÏCØDÉ VÄLUE ☃'))!.string(), 'Ünïcødé data ☃ 😀');
    assert.equal(await hive.value('types', 'no such value'), undefined);
    assert.equal(await hive.value('no such key', 'sz'), undefined);
    // Every key found by its own path, through the hash leaves hivex wrote.
    const keys = await walkAll(hive);
    for (const [path, key] of keys) assert.equal((await hive.key(path.toLowerCase()))?.cell, key.cell, path);
  });
});
