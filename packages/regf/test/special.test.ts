/**
 * The `special` hive from the shared fixtures, made by Windows XP: names in
 * Latin-1 (stored compressed) and in UTF-16 (stored so because they are not
 * Latin-1), a key and a value whose names hold an embedded NUL, security
 * records Windows wrote. Checked against hivexregedit --export (which keeps
 * the NUL) and hivexml.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { openHive, type RegistryKey } from '../src/index.ts';
import { exportHive, hivexmlNodes, hivexUnavailable, SPECIAL_HIVE } from './hivex.ts';
import { guardImages } from '../../../test/support/imageGuard.ts';

describe('regf: the special hive (Windows XP; Unicode and embedded NUL names)', function () {
  this.timeout(60_000);
  before(async function () {
    const why = await hivexUnavailable();
    if (why) {
      console.log(`      ${why}: skipped`);
      this.skip();
    }
  });

  it('every key and value as hivexregedit --export shows them, names with NUL included', async () => {
    await guardImages([SPECIAL_HIVE], async () => {
      const hive = await openHive(await readFile(SPECIAL_HIVE), { name: 'special' });
      assert.equal(hive.dirty, false);
      const exported = await exportHive(SPECIAL_HIVE);
      const keys: RegistryKey[] = [];
      for await (const key of hive.walk()) keys.push(key);
      assert.deepEqual(keys.map((k) => k.path).sort(), [...exported.keys()].sort());
      assert.deepEqual(
        keys.map((k) => k.path),
        ['\\', '\\abcd_äöüß', '\\weird™', '\\zero\0key'],
      );
      for (const key of keys) {
        const exp = exported.get(key.path)!;
        for (const v of await key.values()) {
          const e = exp.values.get(v.name);
          assert.ok(e, `${key.path} ${JSON.stringify(v.name)} missing from the export`);
          assert.equal(v.type, e.type);
          assert.ok((await v.bytes()).equals(e.bytes));
        }
        assert.equal((await key.values()).length, exp.values.size);
      }
      assert.deepEqual(hive.warnings, []);
    });
  });

  it('names: Latin-1 stored compressed, others UTF-16, NUL kept; looked up as Windows looks them up', async () => {
    const hive = await openHive(await readFile(SPECIAL_HIVE), { name: 'special' });
    const root = await hive.root();
    assert.equal(root.name, '$$$PROTO.HIV');
    const latin = (await hive.key('ABCD_ÄÖÜß'))!;
    assert.equal(latin.name, 'abcd_äöüß');
    assert.equal(latin.compressedName, true);
    assert.ok(latin.rawName.equals(Buffer.from('abcd_äöüß', 'latin1')));
    const weird = (await hive.key('WEIRD™'))!;
    assert.equal(weird.compressedName, false);
    assert.ok(weird.rawName.equals(Buffer.from('weird™', 'utf16le')));
    assert.equal(await (await weird.value('SYMBOLS $£₤₧€'))!.dword(), 0);
    const zero = (await hive.key('Zero\0Key'))!;
    assert.equal(zero.name, 'zero\0key');
    assert.equal(await (await zero.value('ZERO\0VAL'))!.dword(), 0);
    // Names are counted, not NUL-terminated: "zero" is another name (hivex, with C strings, would find the key).
    assert.equal(await hive.key('zero'), undefined);
    assert.equal(await zero.value('zero'), undefined);
  });

  it('key times and offsets as hivexml lists them; security as Windows wrote it', async () => {
    const hive = await openHive(await readFile(SPECIAL_HIVE), { name: 'special' });
    const nodes = await hivexmlNodes(SPECIAL_HIVE);
    const ours: Array<{ name: string; fileOffset: number; mtime: string }> = [];
    for await (const key of hive.walk()) {
      // hivexml prints names as C strings: up to the NUL.
      ours.push({ name: key.name.split('\0')[0], fileOffset: key.cell + 4096, mtime: new Date(key.lastWritten.sec * 1000).toISOString().replace('.000Z', 'Z') });
    }
    assert.deepEqual(
      ours.sort((a, b) => a.fileOffset - b.fileOffset),
      nodes.sort((a, b) => a.fileOffset - b.fileOffset),
    );
    const rootSecurity = (await (await hive.root()).security())!;
    assert.equal(rootSecurity.owner, 'S-1-5-32-544'); // BUILTIN\Administrators
    const keySecurity = (await (await hive.key('weird™'))!.security())!;
    assert.match(keySecurity.owner!, /^S-1-5-21-\d+-\d+-\d+-500$/); // the machine's Administrator
    assert.ok(keySecurity.referenceCount >= 1);
    assert.equal(keySecurity.descriptor[0], 1);
  });
});
