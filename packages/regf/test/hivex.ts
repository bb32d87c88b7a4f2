/**
 * The oracle for the regf tests: Debian's libhivex-bin. Hives are made by
 * merging a .reg file into a copy of the minimal hive from the shared
 * fixtures (hivexregedit cannot make a hive from nothing), and read back with
 * `hivexregedit --export` (every key and every value's type and bytes),
 * `hivexget` (values as hivex decodes them) and `hivexml` (key times and the
 * file offsets of key nodes).
 */
import { execa } from 'execa';
import { chmod, copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir } from '../../../test/support/scratch.ts';
import { repoRoot } from '../../../test/support/run.ts';

/** The shared fixtures beside the repository (../shared), or where GUESTLENS_SHARED points. */
export const FIXTURES = join(process.env.GUESTLENS_SHARED ?? join(repoRoot, '..', 'shared'), 'fixtures', 'registry');
export const MINIMAL_HIVE = join(FIXTURES, 'minimal');
export const SPECIAL_HIVE = join(FIXTURES, 'special');

/** Why the hivex tools cannot be used here, or undefined when they can. */
export async function hivexUnavailable(): Promise<string | undefined> {
  const { existsSync } = await import('node:fs');
  if (!existsSync(MINIMAL_HIVE)) return `the shared registry fixtures are not at ${FIXTURES} (a clone without ../shared; set GUESTLENS_SHARED)`;
  for (const tool of ['hivexregedit', 'hivexget', 'hivexml']) {
    const r = await execa('sh', ['-c', `command -v ${tool}`], { reject: false });
    if (r.exitCode !== 0) return `${tool} is not installed (Debian package libhivex-bin)`;
  }
  return undefined;
}

/**
 * hivexregedit is Perl: without PERL_UNICODE it reads .reg files as bytes
 * (hivex then stores UTF-8 names twice encoded) and prints names of Latin-1
 * characters as Latin-1 bytes; with it, both are UTF-8.
 */
const PERL_UTF8 = { PERL_UNICODE: 'SD' };

async function run(file: string, args: string[]): Promise<Buffer> {
  const r = await execa(file, args, { reject: false, encoding: 'buffer', env: PERL_UTF8, stripFinalNewline: false });
  if (r.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} failed (exit ${r.exitCode}): ${Buffer.from(r.stderr).toString()}`);
  return Buffer.from(r.stdout);
}

/**
 * A hive made by merging `reg` (REGEDIT4 text, UTF-8; keys under
 * HKEY_LOCAL_MACHINE\SOFTWARE, or the given prefix) into a copy of the
 * minimal hive. Returns the path of the new hive.
 */
export async function buildHive(label: string, reg: string, prefix = 'HKEY_LOCAL_MACHINE\\SOFTWARE'): Promise<string> {
  const dir = scratchDir(`hive-${label}`);
  const hive = join(dir, label);
  await copyFile(MINIMAL_HIVE, hive);
  await chmod(hive, 0o644);
  const regFile = join(dir, `${label}.reg`);
  await writeFile(regFile, reg, 'utf8');
  await run('hivexregedit', ['--merge', '--prefix', prefix, hive, regFile]);
  return hive;
}

/** A hex(N) line of a .reg file for raw bytes of any type. */
export function hexValue(type: number, bytes: Buffer): string {
  return `hex(${type.toString(16)}):${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join(',')}`;
}

/** UTF-16LE with a terminating NUL, as Windows stores REG_SZ. */
export function sz(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf16le');
}

export interface ExportedValue {
  type: number;
  bytes: Buffer;
}

export interface ExportedKey {
  path: string;
  values: Map<string, ExportedValue>;
}

/** `hivexregedit --export HIVE '\'`, parsed: every key by path, every value by name with its type and bytes. */
export async function exportHive(hive: string): Promise<Map<string, ExportedKey>> {
  const text = (await run('hivexregedit', ['--export', hive, '\\'])).toString('utf8');
  const keys = new Map<string, ExportedKey>();
  let current: ExportedKey | undefined;
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('Windows Registry Editor')) continue;
    if (line.startsWith('[') && line.endsWith(']')) {
      current = { path: line.slice(1, -1), values: new Map() };
      keys.set(current.path, current);
      continue;
    }
    if (!current) throw new Error(`hivexregedit export: a value before any key: ${line}`);
    let name: string;
    let rest: string;
    if (line.startsWith('@=')) {
      name = '';
      rest = line.slice(2);
    } else {
      const m = /^"((?:[^"\\]|\\.)*)"=(.*)$/s.exec(line);
      if (!m) throw new Error(`hivexregedit export: cannot parse ${JSON.stringify(line)}`);
      name = m[1].replace(/\\(.)/gs, '$1');
      rest = m[2];
    }
    let value: ExportedValue;
    const dword = /^dword:([0-9a-f]{8})$/.exec(rest);
    const hex = /^hex(?:\(([0-9a-f]+)\))?:(.*)$/.exec(rest);
    if (dword) {
      const bytes = Buffer.alloc(4);
      bytes.writeUInt32LE(parseInt(dword[1], 16));
      value = { type: 4, bytes };
    } else if (hex) {
      value = { type: hex[1] === undefined ? 3 : parseInt(hex[1], 16), bytes: hex[2] === '' ? Buffer.alloc(0) : Buffer.from(hex[2].split(',').map((h) => parseInt(h, 16))) };
    } else {
      throw new Error(`hivexregedit export: unknown value form ${JSON.stringify(rest.slice(0, 40))}`);
    }
    current.values.set(name, value);
  }
  return keys;
}

/** `hivexget HIVE KEY [VALUE]` as text (without the final newline). */
export async function hivexget(hive: string, key: string, value?: string): Promise<string> {
  const out = (await run('hivexget', value === undefined ? [hive, key] : [hive, key, value])).toString('utf8');
  return out.replace(/\n$/, '');
}

export interface HivexmlNode {
  name: string;
  /** "2014-01-10T21:06:02Z" */
  mtime: string;
  /** File offset of the key node's cell (its size field). */
  fileOffset: number;
}

/** Key nodes as hivexml lists them: name, mtime, file offset, in document order. */
export async function hivexmlNodes(hive: string): Promise<HivexmlNode[]> {
  // hivexml opens /dev/stdout by name, which fails on the socket Node gives a child for stdout: write to a file instead.
  const out = join(scratchDir('hivexml'), 'hive.xml');
  const r = await execa('sh', ['-c', 'exec hivexml "$1" > "$2"', 'sh', hive, out], { reject: false });
  if (r.exitCode !== 0) throw new Error(`hivexml ${hive} failed (exit ${r.exitCode}): ${r.stderr}`);
  const xml = await readFile(out, 'utf8');
  const nodes: HivexmlNode[] = [];
  const re = /<node name="([^"]*)"[^>]*><mtime>([^<]*)<\/mtime><byte_runs><byte_run file_offset="(\d+)"/g;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    nodes.push({ name: unescapeXml(m[1]), mtime: m[2], fileOffset: Number(m[3]) });
  }
  return nodes;
}

function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#(\d+)|#x([0-9a-f]+));/gi, (_m, name: string, dec?: string, hex?: string) => {
    if (dec) return String.fromCodePoint(Number(dec));
    if (hex) return String.fromCodePoint(parseInt(hex, 16));
    return { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }[name as 'lt']!;
  });
}
