/**
 * The test corpus: one rich hive built by hivexregedit (every value type,
 * odd string data, big values, many subkeys, Unicode names, deep nesting),
 * and an edited copy of it holding what hivex never writes (big data
 * records, index roots over li/lf/lh leaves, class names).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { buildHive, hexValue, sz } from './hivex.ts';
import { HiveEditor } from './hiveEditor.ts';
import { openHive } from '../src/index.ts';
import { Prng } from '../../../test/support/prng.ts';

export const MANY = 1500;
export const ROOTED = 300;
export const DEEP = 24;

export const UNICODE_KEYS = ['Ünïcødé™ 日本', 'ελληνικά', 'emoji 😀 key', 'Latin1 äöüß', 'a.b-c_d e(f){g}'];

export function bytes(length: number, seed: number): Buffer {
  return new Prng(seed).bytes(length);
}

/** Big values and their data: the ones named to-db* are moved into big data records by the editor. */
export const BIG_VALUES: Record<string, { type: number; data: Buffer }> = {
  direct: { type: 3, data: bytes(40_000, 1) },
  'to-db': { type: 3, data: bytes(50_000, 2) },
  'to-db-two-segments': { type: 3, data: bytes(16344 * 2, 3) },
  'to-db-just-over': { type: 3, data: bytes(16345, 4) },
  'to-db-sz': { type: 1, data: sz('big string ✓ '.repeat(1600)) },
};

export function corpusReg(): string {
  const L: string[] = ['REGEDIT4', ''];
  const key = (path: string, values: string[] = []) => {
    L.push(`[HKEY_LOCAL_MACHINE\\SOFTWARE\\${path}]`, ...values, '');
  };
  const utf16 = (s: string) => Buffer.from(s, 'utf16le');
  key('Types', [
    '@="the default"',
    '"sz"="hello, world"',
    '"sz-empty"=""',
    `"sz-unterminated"=${hexValue(1, utf16('AB'))}`,
    `"sz-junk-after-nul"=${hexValue(1, Buffer.concat([utf16('A\0'), Buffer.from([0xff, 0xff, 0x42, 0x00])]))}`,
    `"sz-odd-length"=${hexValue(1, Buffer.from([0x41, 0x00, 0x42]))}`,
    `"expand"=${hexValue(2, sz('%SystemRoot%\\system32'))}`,
    `"multi"=${hexValue(7, utf16('one\0two\0three\0\0'))}`,
    `"multi-empty"=${hexValue(7, utf16('\0'))}`,
    `"multi-unterminated"=${hexValue(7, utf16('x\0y'))}`,
    '"dword"=dword:deadbeef',
    '"dword-zero"=dword:00000000',
    `"dword-short"=${hexValue(4, Buffer.from([1, 2]))}`,
    `"dword-long"=${hexValue(4, Buffer.from([1, 2, 3, 4, 5]))}`,
    `"dword-be"=${hexValue(5, Buffer.from([0x12, 0x34, 0x56, 0x78]))}`,
    `"qword"=${hexValue(11, Buffer.from([1, 2, 3, 4, 5, 6, 7, 0x88]))}`,
    `"qword-short"=${hexValue(11, Buffer.from([1, 2, 3, 4]))}`,
    '"binary"=hex:00,01,02,fe,ff',
    '"binary-empty"=hex:',
    '"binary-small"=hex:07',
    '"none"=hex(0):',
    `"none-data"=${hexValue(0, bytes(37, 9))}`,
    `"link"=${hexValue(6, utf16('\\Registry\\Machine\\System\\ControlSet001'))}`,
    `"resource-list"=${hexValue(8, bytes(24, 10))}`,
    `"full-resource"=${hexValue(9, bytes(20, 11))}`,
    `"requirements"=${hexValue(10, bytes(48, 12))}`,
    `"unknown-type"=${hexValue(0x12345, Buffer.from([0xaa, 0xbb]))}`,
    `"unknown-type-max"=${hexValue(0xffffffff, bytes(9, 13))}`,
    '"quoted \\"name\\" and back\\\\slash"="q"',
    '"Ünïcødé välue ☃"="Ünïcødé data ☃ 😀"',
    '"MixedCase"="case"',
  ]);
  key('Big', Object.entries(BIG_VALUES).map(([name, v]) => `"${name}"=${hexValue(v.type, v.data)}`));
  key('Many', ['"count"=dword:000005dc']);
  for (let i = 0; i < MANY; i++) key(`Many\\k${String(i).padStart(4, '0')}`, i % 100 === 0 ? [`"index"=dword:${i.toString(16).padStart(8, '0')}`] : []);
  key('Rooted');
  for (let i = 0; i < ROOTED; i++) key(`Rooted\\Sub${String(i).padStart(3, '0')}`);
  for (const name of UNICODE_KEYS) key(name, [`"name"="${name}"`]);
  let deep = 'Deep';
  key(deep);
  for (let i = 1; i < DEEP; i++) {
    deep += `\\Level${i}`;
    key(deep, i === DEEP - 1 ? ['"bottom"="yes"'] : []);
  }
  key('Empty');
  return `${L.join('\n')}\n`;
}

export interface Corpus {
  /** The hive as hivexregedit wrote it. */
  plain: string;
  /** The same hive with big data records, an index root and class names added. */
  edited: string;
  /** The class names set on keys of `edited`. */
  classNames: Record<string, string>;
}

export const CLASS_NAMES: Record<string, string> = { '\\Types': 'TypesClass', '\\Rooted': 'Ünïcødé class' };

/** A last-write time with a sub-second part, set on \\Types of the edited hive. */
export const TYPES_FILETIME = 133_500_000_001_234_567n;

export async function buildCorpus(): Promise<Corpus> {
  const plain = await buildHive('corpus', corpusReg());
  const data = await readFile(plain);
  const hive = await openHive(data, { name: plain });
  const editor = new HiveEditor(Buffer.from(data));
  const big = (await hive.key('Big'))!;
  for (const v of await big.values()) if (v.name.startsWith('to-db')) editor.toBigData(v.cell);
  const rooted = (await hive.key('Rooted'))!;
  const names = (await rooted.subkeys()).map((k) => k.name);
  editor.toIndexRoot(rooted.cell, ['li', 'lf', 'lh'], names);
  editor.setFiletime((await hive.key('Types'))!.cell, TYPES_FILETIME);
  for (const [path, name] of Object.entries(CLASS_NAMES)) editor.setClassName((await hive.key(path))!.cell, name);
  const edited = `${plain}-edited`;
  await writeFile(edited, editor.finish());
  return { plain, edited, classNames: CLASS_NAMES };
}
