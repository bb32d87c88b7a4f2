/**
 * The fuzz corpus: the shared `special` hive (Unicode and embedded NUL
 * names), and a small hivex-built hive edited to hold every structure the
 * reader knows (an index root over li/lf/lh leaves, big data, a class name,
 * resident and cell data of every type).
 */
import { readFile } from 'node:fs/promises';
import { buildHive, hexValue, sz, SPECIAL_HIVE } from './hivex.ts';
import { HiveEditor } from './hiveEditor.ts';
import { findRegions, type FuzzImage } from './fuzzer.ts';
import { openHive } from '../src/index.ts';
import { bytes } from './corpus.ts';

export async function buildFuzzImages(): Promise<FuzzImage[]> {
  const L = ['REGEDIT4', '', '[HKEY_LOCAL_MACHINE\\SOFTWARE\\Types]', '@="default"', '"sz"="text"'];
  L.push(`"multi"=${hexValue(7, Buffer.from('a\0bc\0\0', 'utf16le'))}`, '"dw"=dword:00000007', `"qw"=${hexValue(11, bytes(8, 5))}`);
  L.push('"small"=hex:01,02', `"bin"=${hexValue(3, bytes(40, 6))}`, `"big"=${hexValue(3, bytes(20_000, 7))}`, `"ünï ☃"=${hexValue(1, sz('☃'))}`, '');
  L.push('[HKEY_LOCAL_MACHINE\\SOFTWARE\\Types\\Sub]', '"x"="y"', '');
  L.push('[HKEY_LOCAL_MACHINE\\SOFTWARE\\Fan]', '');
  const names: string[] = [];
  for (let i = 0; i < 30; i++) {
    names.push(`f${String(i).padStart(2, '0')}`);
    L.push(`[HKEY_LOCAL_MACHINE\\SOFTWARE\\Fan\\${names[i]}]`, i % 7 === 0 ? `"v"=dword:0000000${i % 10}` : '', '');
  }
  L.push('[HKEY_LOCAL_MACHINE\\SOFTWARE\\Ünïcødé 日本]', '"n"="v"', '');
  // What the Windows facts read, so fuzzing reaches them too (one hive serves as SOFTWARE and SYSTEM).
  for (const k of ['Microsoft', 'Microsoft\\Windows NT', 'Microsoft\\Windows', 'Microsoft\\Windows\\CurrentVersion', 'ControlSet001', 'ControlSet001\\Control', 'ControlSet001\\Control\\ComputerName']) {
    L.push(`[HKEY_LOCAL_MACHINE\\SOFTWARE\\${k}]`, '');
  }
  L.push('[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion]', '"ProductName"="Windows 10 Pro"', '"CurrentMajorVersionNumber"=dword:0000000a', '"CurrentMinorVersionNumber"=dword:00000000', '"CurrentBuildNumber"="22631"', '"InstallationType"="Client"', '');
  L.push('[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall]', '');
  for (const app of ['App1', 'App2']) L.push(`[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\${app}]`, `"DisplayName"="${app}"`, '"DisplayVersion"="1.0"', '');
  L.push('[HKEY_LOCAL_MACHINE\\SOFTWARE\\Select]', '"Current"=dword:00000001', '');
  L.push('[HKEY_LOCAL_MACHINE\\SOFTWARE\\ControlSet001\\Control\\ComputerName\\ComputerName]', '"ComputerName"="FUZZ"', '');
  L.push('[HKEY_LOCAL_MACHINE\\SOFTWARE\\MountedDevices]', `"\\\\DosDevices\\\\C:"=${hexValue(3, Buffer.from('4d3c2b1a0000100000000000', 'hex'))}`, `"\\\\DosDevices\\\\D:"=${hexValue(3, Buffer.concat([Buffer.from('DMIO:ID:'), bytes(16, 8)]))}`, '');
  const path = await buildHive('fuzz', `${L.join('\n')}\n`);
  const plain = await readFile(path);
  const hive = await openHive(plain);
  const editor = new HiveEditor(Buffer.from(plain));
  const types = (await hive.key('Types'))!;
  editor.toBigData((await types.value('big'))!.cell);
  editor.setClassName(types.cell, 'a class');
  editor.toIndexRoot((await hive.key('Fan'))!.cell, ['li', 'lf', 'lh'], names);
  const edited = editor.finish();
  const special = await readFile(SPECIAL_HIVE);
  const images: FuzzImage[] = [];
  for (const [name, data] of [
    ['special', special],
    ['edited', edited],
  ] as const) {
    images.push({ name, data, regions: await findRegions(name, data) });
  }
  return images;
}
