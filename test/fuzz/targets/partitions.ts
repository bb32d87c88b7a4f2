/**
 * MBR and GPT through the guest path: the protective MBR, GPT headers and
 * entry arrays (primary and backup), extended partitions and their chain of
 * EBRs, each partition probed and, for the FAT one, read. Seeds by sfdisk
 * and mkfs.vfat --offset.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sh } from '../../support/run.ts';
import type { FuzzTarget, Seed } from '../target.ts';
import { walkGuest } from './support.ts';

const SIZE = 8 << 20;

async function disk(dir: string, name: string, script: string, fatStart: number): Promise<Seed> {
  const path = join(dir, `${name}.img`);
  await sh('truncate', ['-s', String(SIZE), path]);
  await sh('sfdisk', ['-q', path], { input: script });
  await sh('mkfs.vfat', ['--offset', String(fatStart), '-n', 'PART', path, '1024']);
  const data = await readFile(path);
  const sectors = SIZE / 512;
  // The tables (first 34 sectors, the backup GPT) and the EBRs (any sector 0x55aa-signed past the first MiB's table area).
  const hot: [number, number][] = [[0, 34 * 512], [(sectors - 33) * 512, 33 * 512]];
  for (let s = 34; s < sectors; s += 1) if (data.readUInt16LE(s * 512 + 510) === 0xaa55 && data.subarray(s * 512 + 446, s * 512 + 510).some((b) => b !== 0) && s !== fatStart) hot.push([s * 512, 512]);
  return { name, data, hot };
}

const target: FuzzTarget = {
  name: 'partitions',
  about: 'MBR (primary, extended, logical chain), GPT headers and entry arrays',
  async seeds(dir) {
    return [
      await disk(dir, 'mbr', 'label: dos\nstart=2048, size=2048, type=c\nstart=4096, size=2048, type=83\nstart=6144, size=10000, type=5\nsize=1024, type=83\nsize=1024, type=82\n', 2048),
      await disk(dir, 'gpt', 'label: gpt\nstart=2048, size=2048, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="data"\nstart=4096, size=2048, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\nstart=6144, size=4096, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F\n', 2048),
    ];
  },
  fuzz: (input) => walkGuest(input),
};
export default target;
