/**
 * Hives read from a BlockSource: a lookup reads a few pages of a big hive,
 * not all of it; refresh() sees what changed underneath (a live guest).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { openHive } from '../src/index.ts';
import { baseBlockChecksum } from '../src/baseBlock.ts';
import { buildHive, hivexUnavailable, sz, hexValue } from './hivex.ts';
import { MemorySource } from '../../../test/support/memorySource.ts';

describe('regf: hives from a BlockSource', function () {
  this.timeout(120_000);
  let big: Buffer;
  before(async function () {
    const why = await hivexUnavailable();
    if (why) {
      console.log(`      ${why}: skipped`);
      this.skip();
    }
    const L = ['REGEDIT4', '', '[HKEY_LOCAL_MACHINE\\SOFTWARE\\Wide]', ''];
    for (let i = 0; i < 800; i++) L.push(`[HKEY_LOCAL_MACHINE\\SOFTWARE\\Wide\\key${i}]`, `"v"=${hexValue(1, sz(`value ${i}`))}`, '');
    big = await readFile(await buildHive('wide', `${L.join('\n')}\n`));
  });

  it('a lookup in a hive of megabytes reads a few pages of it', async () => {
    assert.ok(big.length > 2 << 20, `the hive has ${big.length} bytes`);
    const source = new MemorySource(big, 'wide.hive');
    const hive = await openHive(source);
    assert.equal(await (await hive.value('WIDE\\KEY777', 'V'))!.string(), 'value 777');
    assert.ok(source.bytesRead < 64 * 1024, `read ${source.bytesRead} bytes of ${big.length}`);
    const before = source.bytesRead;
    assert.equal(await (await hive.value('wide\\key778', 'v'))!.string(), 'value 778');
    assert.ok(source.bytesRead - before < 32 * 1024, 'the second lookup reuses cached pages');
  });

  it('refresh() reads the base block and cells again', async () => {
    const source = new MemorySource(big, 'wide.hive');
    const hive = await openHive(source, { live: true });
    const key = (await hive.key('Wide\\key5'))!;
    const v = (await key.value('v'))!;
    assert.equal(await v.string(), 'value 5');
    assert.equal(hive.dirty, false);
    // The guest starts a write (the primary sequence number moves) and changes the value's data.
    const data = await v.bytes();
    const vkField = big.indexOf(data);
    assert.ok(vkField > 0);
    const head = source.unit(0);
    head.writeUInt32LE(head.readUInt32LE(4) + 1, 4);
    head.writeUInt32LE(baseBlockChecksum(head), 0x1fc);
    source.patch(0, head);
    const changed = Buffer.from('value 6\0', 'utf16le');
    const unit = Math.floor(vkField / 512);
    const within = source.unit(unit);
    changed.copy(within, vkField - unit * 512, 0, Math.min(changed.length, 512 - (vkField - unit * 512)));
    source.patch(unit * 512, within);
    assert.equal(await v.string(), 'value 5', 'cached until refreshed');
    await hive.refresh();
    assert.equal(hive.dirty, true);
    assert.match(hive.dirtyReasons[0], /^primary sequence number \d+ differs from secondary sequence number \d+$/);
    assert.equal(await (await hive.value('Wide\\key5', 'v'))!.string(), 'value 6');
  });
});
