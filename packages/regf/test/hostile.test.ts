/**
 * Hostile and damaged hives: mutation fuzzing over every structure the reader
 * touches (a few thousand cases here; `pnpm -s fuzz --target regf`
 * runs longer), and hand-made worst cases: subkey lists that make the tree a
 * cycle or a graph, an index root pointing at itself, big data that cannot
 * hold its value, absurd counts, free cells, broken bin headers, truncated
 * files, dirty and torn base blocks. Every failure is a typed RegfError that
 * names the hive, the structure and its cell.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { openHive, RegfChecksumError, RegfCorruptError, RegfError, RegfFormatError, RegfLimitError, type Hive } from '../src/index.ts';
import { BASE_BLOCK, HBINS_START, NK, VK } from '../src/layout.ts';
import { nameHash } from '../src/names.ts';
import { HiveEditor } from './hiveEditor.ts';
import { hivexUnavailable, SPECIAL_HIVE } from './hivex.ts';
import { buildFuzzImages } from './fuzzImages.ts';
import { runFuzz, type FuzzImage } from './fuzzer.ts';
import { MemorySource } from '../../../test/support/memorySource.ts';

const CASES = Number(process.env.REGF_FUZZ_CASES ?? 1250);

async function collect(hive: Hive): Promise<string[]> {
  const paths: string[] = [];
  for await (const key of hive.walk()) paths.push(key.path);
  return paths;
}

function isCorrupt(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof RegfCorruptError, `expected RegfCorruptError, got ${(err as Error)?.stack ?? String(err)}`);
    assert.equal(err.code, 'EFSCORRUPTED');
    assert.match(err.message, pattern);
    assert.match(err.message, /^hostile\.hive: registry hive is damaged: /);
    return true;
  };
}

/** A list record (li or lh) holding `cells`. */
function list(kind: 'li' | 'lh', cells: number[], names: string[] = []): Buffer {
  const w = kind === 'li' ? 4 : 8;
  const b = Buffer.alloc(4 + cells.length * w);
  b.write(kind, 0, 'latin1');
  b.writeUInt16LE(cells.length, 2);
  cells.forEach((c, i) => {
    b.writeUInt32LE(c, 4 + i * w);
    if (kind === 'lh') b.writeUInt32LE(nameHash(names[i] ?? ''), 8 + i * w);
  });
  return b;
}

describe('regf: hostile and damaged hives', function () {
  this.timeout(300_000);
  let images: FuzzImage[];
  let edited: Buffer;

  before(async function () {
    const why = await hivexUnavailable();
    if (why) {
      console.log(`      ${why}: skipped`);
      this.skip();
    }
    images = await buildFuzzImages();
    edited = images.find((i) => i.name === 'edited')!.data;
  });

  async function withEdit(edit: (e: HiveEditor, hive: Hive) => Promise<void>, finish: Parameters<HiveEditor['finish']>[0] = {}): Promise<Buffer> {
    const hive = await openHive(edited);
    const e = new HiveEditor(Buffer.from(edited));
    await edit(e, hive);
    return e.finish(finish);
  }

  it(`survives ${CASES} mutated hives with typed errors only, no loop, bounded memory`, async () => {
    const heapBefore = process.memoryUsage().heapUsed;
    const { failures, stats } = await runFuzz(images, CASES, 0x4e6f);
    const heapAfter = process.memoryUsage().heapUsed;
    console.log(`      ${stats.cases} cases, ${stats.opened} opened; errors by code ${JSON.stringify(stats.errorsByCode)}; regions ${JSON.stringify(stats.byKind)}`);
    if (failures.length) {
      const f = failures[0];
      assert.fail(`${failures.length} untyped failures; first: ${f.image} seed ${f.seed} mutating ${f.region}: ${(f.error as Error)?.stack ?? String(f.error)}`);
    }
    for (const kind of ['base block', 'hive bin header', 'key node', 'subkey list', 'index root leaf', 'value list', 'value', 'value data', 'big data', 'segment list', 'security', 'class name']) {
      assert.ok(stats.byKind[kind] > 0, `no ${kind} mutated`);
    }
    for (const code of ['EFSCORRUPTED', 'EFBIG', 'EOPNOTSUPP']) assert.ok(stats.errorsByCode[code] > 0, `no ${code} error met`);
    assert.ok(heapAfter - heapBefore < 256 * 1024 * 1024, `heap grew by ${heapAfter - heapBefore} bytes`);
  });

  it('a subkey list naming an ancestor, or the key itself, is a cycle error, not a loop', async () => {
    for (const target of ['Types', 'Types\\Sub'] as const) {
      const data = await withEdit(async (e, hive) => {
        const sub = (await hive.key('Types\\Sub'))!;
        const to = (await hive.key(target))!;
        e.setU32(sub.cell, NK.subkeyList, e.addCell(list('lh', [to.cell], [to.name])));
        e.setU32(sub.cell, NK.subkeyCount, 1);
      });
      const hive = await openHive(new MemorySource(data, 'hostile.hive', data.length, 512, 10_000));
      const sub = (await hive.key('types\\sub'))!;
      await assert.rejects(() => sub.subkeys(), isCorrupt(/subkey list of \\Types\\Sub at cell 0x[0-9a-f]+ \(file offset \d+\): it lists \\Types(\\Sub)? \(cell 0x[0-9a-f]+\), an ancestor of the key: a cycle/));
      await assert.rejects(() => collect(hive), isCorrupt(/a cycle/));
      // A path lookup through the cycle stops too.
      await assert.rejects(() => hive.key(`Types\\Sub\\${target.split('\\').pop()}`), isCorrupt(/a cycle/));
    }
  });

  it('a key listed under two parents, or twice in one list, is an error; its parent pointer a warning', async () => {
    const shared = await withEdit(async (e, hive) => {
      const sub = (await hive.key('Types\\Sub'))!;
      const f00 = (await hive.key('Fan\\f00'))!;
      e.setU32(sub.cell, NK.subkeyList, e.addCell(list('li', [f00.cell])));
      e.setU32(sub.cell, NK.subkeyCount, 1);
    });
    const hive = await openHive(shared, { name: 'hostile.hive' });
    assert.deepEqual((await (await hive.key('Types\\Sub'))!.subkeys()).map((k) => k.path), ['\\Types\\Sub\\f00']);
    assert.ok(hive.warnings.some((w) => /key \\Types\\Sub\\f00: its key node names cell 0x[0-9a-f]+ as its parent, not 0x/.test(w)), hive.warnings.join('\n'));
    await assert.rejects(() => collect(hive), isCorrupt(/the key node of \\(Fan|Types\\Sub)\\f00 was already reached by another path/));

    const twice = await withEdit(async (e, hive) => {
      const fan = (await hive.key('Fan'))!;
      const f00 = (await hive.key('Fan\\f00'))!;
      e.setU32(fan.cell, NK.subkeyList, e.addCell(list('lh', [f00.cell, f00.cell], ['f00', 'f00'])));
      e.setU32(fan.cell, NK.subkeyCount, 2);
    });
    const hive2 = await openHive(twice, { name: 'hostile.hive' });
    await assert.rejects(() => hive2.key('Fan\\f01'), isCorrupt(/subkey list of \\Fan at cell .*: it lists the key node at cell 0x[0-9a-f]+ twice/));
  });

  it('an index root pointing at itself, or at a value, is an error', async () => {
    for (const what of ['itself', 'a value'] as const) {
      const data = await withEdit(async (e, hive) => {
        const fan = (await hive.key('Fan'))!;
        const ri = Buffer.alloc(8);
        ri.write('ri', 0, 'latin1');
        ri.writeUInt16LE(1, 2);
        const vk = (await (await hive.key('Types'))!.value('sz'))!.cell;
        ri.writeUInt32LE(what === 'itself' ? e.nextCellIndex : vk, 4);
        e.setU32(fan.cell, NK.subkeyList, e.addCell(ri));
      });
      const hive = await openHive(data, { name: 'hostile.hive' });
      await assert.rejects(() => hive.key('Fan\\f00'), isCorrupt(/a leaf of the index root at cell 0x[0-9a-f]+\) at cell .*: expected a "li" or "lf" or "lh" record, found signature "(ri|vk)"/));
    }
  });

  it('a subkey hash that disagrees with the name does not hide the key', async () => {
    const data = await withEdit(async (e, hive) => {
      const types = (await hive.key('Types'))!;
      const sub = (await hive.key('Types\\Sub'))!;
      const lh = list('lh', [sub.cell], ['not its name']);
      e.setU32(types.cell, NK.subkeyList, e.addCell(lh));
    });
    const hive = await openHive(data, { name: 'hostile.hive' });
    assert.equal((await hive.key('types\\SUB'))?.path, '\\Types\\Sub');
  });

  it('big data that cannot hold its value, and data cells too small, are errors', async () => {
    const data = await withEdit(async (e, hive) => {
      const big = (await (await hive.key('Types'))!.value('big'))!;
      const db = e.cellData(e.cellData(big.cell).readUInt32LE(VK.dataOffset));
      db.writeUInt16LE(1, 2); // one segment for 20000 bytes
      const small = (await (await hive.key('Types'))!.value('bin'))!;
      e.setU32(small.cell, VK.dataLength, 5000); // 40 bytes of data claim 5000
    });
    const hive = await openHive(data, { name: 'hostile.hive' });
    const types = (await hive.key('Types'))!;
    await assert.rejects(() => types.value('big').then((v) => v!.bytes()), isCorrupt(/big data of value "big" of \\Types at cell .*: 1 segments of at most 16344 bytes cannot hold 20000 bytes/));
    await assert.rejects(() => types.value('bin').then((v) => v!.bytes()), isCorrupt(/data of value "bin" of \\Types at cell .*: 5000 bytes of data do not fit in the cell \(\d+ bytes\), and it is not a big data \("db"\) record/));
  });

  it('absurd counts and sizes are refused before anything is allocated, naming the limit', async () => {
    const data = await withEdit(async (e, hive) => {
      e.setU32((await hive.key('Types'))!.cell, NK.valueCount, 0xffffffff);
    });
    const hive = await openHive(data, { name: 'hostile.hive' });
    await assert.rejects(
      () => hive.value('Types', 'sz'),
      (err: unknown) => err instanceof RegfLimitError && err.code === 'EFBIG' && /the number of values of value list of \\Types is 4294967295, over the limit of 500000 \(limits\.maxValues raises it\)/.test(err.message),
    );
    const small = await openHive(edited, { name: 'hostile.hive', limits: { maxValueBytes: 1000 } });
    await assert.rejects(() => small.value('Types', 'big').then((v) => v!.bytes()), (err: unknown) => err instanceof RegfLimitError && /limits\.maxValueBytes/.test(err.message));
    const shallow = await openHive(edited, { name: 'hostile.hive', limits: { maxDepth: 1 } });
    await assert.rejects(() => shallow.key('Types\\Sub'), isCorrupt(/keys nest deeper than 1 levels/));
  });

  it('a pointer to a free cell, into a bin header, or off the cell grid is an error', async () => {
    const free = await withEdit(async (e, hive) => {
      const vk = (await (await hive.key('Types'))!.value('sz'))!.cell;
      e.hive.writeInt32LE(-e.hive.readInt32LE(HBINS_START + vk), HBINS_START + vk);
    });
    const hive = await openHive(free, { name: 'hostile.hive' });
    await assert.rejects(() => hive.value('Types', 'sz'), isCorrupt(/a value of \\Types at cell 0x[0-9a-f]+ \(file offset \d+\): the cell is free \(unallocated\)/));
    for (const [cell, pattern] of [
      [0x1000 * 2, /inside the header of the hive bin at file offset 12288|the cell|expected/],
      [0x1234, /is not a multiple of 8/],
      [0x7ffffff8, /beyond the hive bins data/],
    ] as const) {
      const data = await withEdit(async (e, h) => e.setU32((await h.key('Types'))!.cell, NK.valueList, cell));
      await assert.rejects(async () => (await openHive(data, { name: 'hostile.hive' })).value('Types', 'sz'), isCorrupt(pattern));
    }
  });

  it('a damaged hive bin header, and a truncated file, are errors where they are met and a warning at open', async () => {
    const data = Buffer.from(edited);
    data.write('hbxn', HBINS_START, 'latin1');
    const hive = await openHive(data, { name: 'hostile.hive' });
    await assert.rejects(() => hive.root(), isCorrupt(/root key node at cell 0x20 \(file offset 4128\): no hive bin header precedes it/));

    const cut = Buffer.from(edited.subarray(0, edited.length - 8192));
    const truncated = await openHive(cut, { name: 'hostile.hive' });
    assert.match(truncated.warnings[0], /the file has \d+ bytes, less than the \d+ its base block declares: the hive is truncated/);
    // The edited hive's last bin holds the big data segments and the class name.
    await assert.rejects(() => truncated.value('Types', 'big').then((v) => v!.bytes()), isCorrupt(/the hive is truncated|the file cuts short/));
    assert.equal(await (await truncated.value('Types\\Sub', 'x'))!.string(), 'y');
  });

  it('not a hive, a transaction log, or an unknown version: a format error saying which', async () => {
    const cases: Array<[Buffer, RegExp, string]> = [];
    cases.push([Buffer.alloc(100), /not a registry hive: no "regf" signature at byte 0 \(the file has 100 bytes/, 'EINVAL']);
    const log = Buffer.from(edited);
    log.writeUInt32LE(6, BASE_BLOCK.fileType);
    cases.push([log, /this is a registry transaction log \(file type 6\), not a hive/, 'EINVAL']);
    const v2 = Buffer.from(edited);
    v2.writeUInt32LE(2, BASE_BLOCK.majorVersion);
    cases.push([v2, /registry hive version 2\.5 is not one guestlens reads/, 'EOPNOTSUPP']);
    const bins = Buffer.from(edited);
    bins.writeUInt32LE(12345, BASE_BLOCK.hiveBinsDataSize);
    cases.push([bins, /hive bins data size 12345 is not a positive multiple of 4096/, 'EINVAL']);
    for (const [data, pattern, code] of cases) {
      await assert.rejects(
        () => openHive(data, { name: 'x.hive' }),
        (err: unknown) => err instanceof RegfFormatError && err.code === code && pattern.test(err.message) && err.message.startsWith('x.hive: ') && err.userFacing,
      );
    }
  });

  it('a dirty hive is read as it is and says why it is dirty; damage in it says the logs may explain it', async () => {
    const dirty = await withEdit(async () => {}, { primarySequence: 0x20, secondarySequence: 0x1f });
    const hive = await openHive(dirty, { name: 'hostile.hive' });
    assert.equal(hive.dirty, true);
    assert.deepEqual(hive.dirtyReasons, ['primary sequence number 32 differs from secondary sequence number 31']);
    assert.equal(await (await hive.value('Types', 'sz'))!.string(), 'text');
    const damaged = Buffer.from(dirty);
    const sz = (await (await hive.key('Types'))!.value('sz'))!.cell;
    damaged.write('xx', HBINS_START + sz + 4, 'latin1');
    const h2 = await openHive(damaged, { name: 'hostile.hive' });
    await assert.rejects(() => h2.value('Types', 'sz'), isCorrupt(/found signature "xx" \(the hive is dirty: its transaction logs hold changes that were not replayed, which may explain this\)/));
  });

  it('a torn base block: dirty when at rest, a retryable checksum error when live; damage is retryable when live', async () => {
    const torn = await withEdit(async () => {}, { badChecksum: true });
    const hive = await openHive(torn, { name: 'hostile.hive' });
    assert.equal(hive.dirty, true);
    assert.match(hive.dirtyReasons[0], /^base block checksum 0x[0-9a-f]+ differs from the computed 0x[0-9a-f]+$/);
    await assert.rejects(
      () => openHive(torn, { name: 'hostile.hive', live: true }),
      (err: unknown) => err instanceof RegfChecksumError && err.code === 'EFSBADCRC' && err.retryable && !/retry/i.test(err.message),
    );
    const damaged = Buffer.from(edited);
    damaged.write('xx', HBINS_START + 0x20 + 4, 'latin1');
    for (const live of [false, true]) {
      const h = await openHive(damaged, { name: 'hostile.hive', live });
      await assert.rejects(() => h.root(), (err: unknown) => err instanceof RegfCorruptError && err.retryable === live && !/retry/i.test(err.message));
    }
  });

  it('errors carry the hive, the structure and the cell as data, and serialise', async () => {
    const damaged = Buffer.from(edited);
    damaged.write('xx', HBINS_START + 0x20 + 4, 'latin1');
    const err = await openHive(damaged, { name: 'C:\\Windows\\System32\\config\\SOFTWARE' })
      .then((h) => h.root())
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(err instanceof RegfError);
    assert.deepEqual(err.toJSON().data, {
      hive: 'C:\\Windows\\System32\\config\\SOFTWARE',
      structure: 'root key node',
      cell: 0x20,
      fileOffset: 0x1020,
      reason: 'expected a "nk" record, found signature "xx"',
    });
  });

  it('the special hive from a source with a tiny cache and a read budget', async () => {
    const data = await readFile(SPECIAL_HIVE);
    const source = new MemorySource(data, 'special', data.length, 512, 500);
    const hive = await openHive(source, { limits: { cacheBytes: 4096 } });
    assert.equal((await collect(hive)).length, 4);
    assert.ok(source.reads < 500);
  });
});
