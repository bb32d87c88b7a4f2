/**
 * Mutation fuzzing of hives, in memory: small real hives (the shared
 * `special` one, and a hivex-built one edited to hold every structure) are
 * mapped into regions (base block, bin headers, and every cell the reader
 * reaches: key nodes, values, value and subkey lists, index roots and their
 * leaves, data cells, big data records and segments, security, class
 * names); each case mutates a few bytes of one region, opens the hive (from a
 * Buffer or from a MemorySource with a read budget, alternately), walks
 * every key and reads every value. Every failure must be a RegfError; a read
 * budget turns a loop into a failure instead of a hang.
 */
import { BASE_BLOCK, CELL_NIL, DATA_RESIDENT, HBIN, HBINS_START, NK, VK } from '../src/layout.ts';
import { openHive, RegfError, windowsFacts, type Hive } from '../src/index.ts';
import { MemorySource, ReadBudgetExceeded } from '../../../test/support/memorySource.ts';
import { Prng } from '../../../test/support/prng.ts';

export type RegionKind =
  | 'base block'
  | 'hive bin header'
  | 'key node'
  | 'subkey list'
  | 'index root leaf'
  | 'value list'
  | 'value'
  | 'value data'
  | 'big data'
  | 'segment list'
  | 'security'
  | 'class name';

export interface Region {
  kind: RegionKind;
  /** File offset and length. */
  offset: number;
  length: number;
}

export interface FuzzImage {
  name: string;
  data: Buffer;
  regions: Region[];
}

/** The cell (size field included) at `cell`, as a region. */
function cellRegion(data: Buffer, kind: RegionKind, cell: number): Region | undefined {
  if (cell === CELL_NIL) return undefined;
  const at = HBINS_START + cell;
  const size = -data.readInt32LE(at);
  return { kind, offset: at, length: Math.min(size, 4096) };
}

/** Every structure of a clean hive, found by walking it with the reader and reading the raw fields. */
export async function findRegions(name: string, data: Buffer): Promise<Region[]> {
  const regions: Region[] = [{ kind: 'base block', offset: 0, length: 512 }];
  const binsSize = data.readUInt32LE(BASE_BLOCK.hiveBinsDataSize);
  for (let at = HBINS_START; at < HBINS_START + binsSize; at += data.readUInt32LE(at + HBIN.size)) {
    regions.push({ kind: 'hive bin header', offset: at, length: HBIN.headerSize });
  }
  const field = (cell: number, off: number) => data.readUInt32LE(HBINS_START + cell + 4 + off);
  const seen = new Set<number>();
  const push = (kind: RegionKind, cell: number) => {
    const r = cellRegion(data, kind, cell);
    // Shared cells (one security record for many keys) are one region.
    if (r && !seen.has(r.offset)) {
      seen.add(r.offset);
      regions.push(r);
    }
  };
  const hive = await openHive(data, { name });
  for await (const key of hive.walk()) {
    const nk = key.cell;
    push('key node', nk);
    if (key.subkeyCount) {
      const list = field(nk, NK.subkeyList);
      push('subkey list', list);
      if (data.toString('latin1', HBINS_START + list + 4, HBINS_START + list + 6) === 'ri') {
        const count = data.readUInt16LE(HBINS_START + list + 6);
        for (let i = 0; i < count; i++) push('index root leaf', data.readUInt32LE(HBINS_START + list + 8 + i * 4));
      }
    }
    if (key.valueCount) push('value list', field(nk, NK.valueList));
    push('security', field(nk, NK.security));
    if (data.readUInt16LE(HBINS_START + nk + 4 + NK.classLength)) push('class name', field(nk, NK.className));
    for (const value of await key.values()) {
      push('value', value.cell);
      const length = field(value.cell, VK.dataLength);
      if (length & DATA_RESIDENT || length === 0) continue;
      const dataCell = field(value.cell, VK.dataOffset);
      const isDb = data.toString('latin1', HBINS_START + dataCell + 4, HBINS_START + dataCell + 6) === 'db' && length > 16344;
      push(isDb ? 'big data' : 'value data', dataCell);
      if (isDb) {
        const list = field(dataCell, 4);
        push('segment list', list);
        push('value data', data.readUInt32LE(HBINS_START + list + 4));
      }
    }
  }
  return regions;
}

const INTERESTING = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x1000, 0x3fd8, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffff8, 0xfffffffe, 0xffffffff];

function mutate(data: Buffer, region: Region, rng: Prng): void {
  const n = 1 + rng.below(4);
  for (let k = 0; k < n; k++) {
    const pos = region.offset + rng.below(region.length);
    const aligned4 = pos - (pos % 4);
    const aligned2 = pos - (pos % 2);
    const end = region.offset + region.length;
    switch (rng.below(6)) {
      case 0:
        data[pos] = rng.below(256);
        break;
      case 1:
        data[pos] ^= 1 << rng.below(8);
        break;
      case 2:
        if (aligned2 + 2 <= end) data.writeUInt16LE(INTERESTING[rng.below(INTERESTING.length)] & 0xffff, aligned2);
        break;
      case 3:
        if (aligned4 + 4 <= end) data.writeUInt32LE(INTERESTING[rng.below(INTERESTING.length)], aligned4);
        break;
      case 4:
        // A pointer to somewhere else in the hive (a cell index, maybe a real one).
        if (aligned4 + 4 <= end) data.writeUInt32LE((rng.below(data.length) & ~7) >>> 0, aligned4);
        break;
      default:
        if (aligned4 + 4 <= end) data.writeUInt32LE(rng.next(), aligned4);
    }
  }
}

/** Everything a user of the library can ask of a hive; returns the (typed) errors met, throws any other. */
export async function exercise(hive: Hive): Promise<RegfError[]> {
  const errors: unknown[] = [];
  const guard = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      errors.push(err);
    }
  };
  let keys = 0;
  await guard(async () => {
    for await (const key of hive.walk()) {
      if (++keys > 100_000) throw new Error('walk does not end');
      await guard(() => key.className());
      await guard(() => key.security());
      await guard(async () => {
        for (const value of await key.values()) {
          await guard(() => value.data());
          await guard(() => key.value(value.name));
        }
      });
      await guard(async () => {
        for (const child of await key.subkeys()) await guard(() => key.subkey(child.name));
      });
    }
  });
  await guard(() => hive.key('Types\\Sub\\nothing'));
  // The facts swallow hive damage into warnings: they must never throw on a damaged hive.
  const facts = await windowsFacts({ software: hive, system: hive });
  if (!Array.isArray(facts.warnings)) throw new Error('facts without warnings');
  void hive.warnings;
  for (const err of errors) if (!(err instanceof RegfError)) throw err;
  return errors as RegfError[];
}

export interface FuzzFailure {
  image: string;
  seed: number;
  region: string;
  error: unknown;
}

export interface FuzzStats {
  cases: number;
  opened: number;
  errorsByCode: Record<string, number>;
  byKind: Record<string, number>;
}

export async function runFuzz(images: FuzzImage[], cases: number, seed: number): Promise<{ failures: FuzzFailure[]; stats: FuzzStats }> {
  const failures: FuzzFailure[] = [];
  const stats: FuzzStats = { cases: 0, opened: 0, errorsByCode: {}, byKind: {} };
  const rng = new Prng(seed);
  for (let i = 0; i < cases; i++) {
    const caseSeed = rng.next();
    const caseRng = new Prng(caseSeed);
    const image = images[caseRng.below(images.length)];
    const region = image.regions[caseRng.below(image.regions.length)];
    const data = Buffer.from(image.data);
    mutate(data, region, caseRng);
    stats.cases++;
    stats.byKind[region.kind] = (stats.byKind[region.kind] ?? 0) + 1;
    const viaSource = caseRng.below(2) === 0;
    try {
      const hive = viaSource
        ? await openHive(new MemorySource(data, `${image.name}#${caseSeed}`, data.length, 512, 50_000), { limits: { cacheBytes: 16384, maxCellBytes: 1 << 20, maxValueBytes: 1 << 20 } })
        : await openHive(data, { name: `${image.name}#${caseSeed}`, limits: { maxCellBytes: 1 << 20, maxValueBytes: 1 << 20 } });
      stats.opened++;
      for (const err of await exercise(hive)) stats.errorsByCode[err.code] = (stats.errorsByCode[err.code] ?? 0) + 1;
    } catch (err) {
      if (err instanceof RegfError) {
        stats.errorsByCode[err.code] = (stats.errorsByCode[err.code] ?? 0) + 1;
        continue;
      }
      failures.push({ image: image.name, seed: caseSeed, region: region.kind, error: err instanceof ReadBudgetExceeded ? new Error(`read budget exceeded: ${err.message}`) : err });
    }
  }
  return { failures, stats };
}
