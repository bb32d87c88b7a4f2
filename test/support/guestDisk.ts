/**
 * Guest disks for end-to-end tests, made with the real tools and no loop
 * device: each filesystem is made in its own sparse file (mkfs -d fills it),
 * sfdisk writes the partition table, and the filesystems are copied in at
 * their partitions' offsets (sparse). Optionally converted to qcow2.
 */
import { execa } from 'execa';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from './scratch.ts';
import { sh } from './run.ts';

const MiB = 1024 * 1024;

export type PartitionContent =
  /** mkfs program and its options; the filesystem is filled from `files` when the program takes -d. */
  | { mkfs: string; args?: string[]; files?: Record<string, string | Buffer> }
  | { swap: true }
  /** Left as zeros: a partition with no filesystem. */
  | { empty: true }
  /** A ready-made filesystem image copied in. */
  | { image: string };

export interface PartitionSpec {
  sizeMiB: number;
  content: PartitionContent;
  /** sfdisk type (e.g. 'linux', 'swap', '83'); defaults by content. */
  type?: string;
  /** MBR only: put this partition inside the extended partition (a logical partition, /dev/sdX5...). */
  logical?: boolean;
}

export interface BuiltDisk {
  /** The raw disk. */
  raw: string;
  /** Where each partition landed, in spec order (kernel-oracle mounts use offset/sizelimit). */
  partitions: { offset: number; size: number; number: number; spec: PartitionSpec }[];
}

/** Write a directory tree of files for mkfs -d. */
export function writeTree(root: string, files: Record<string, string | Buffer>): void {
  for (const [path, content] of Object.entries(files)) {
    const full = join(root, path);
    mkdirSync(join(full, '..'), { recursive: true });
    writeFileSync(full, content);
  }
}

/** Build a disk with a 'gpt' or 'dos' label holding the given partitions, 1 MiB aligned. */
export async function buildDisk(name: string, label: 'gpt' | 'dos', specs: PartitionSpec[]): Promise<BuiltDisk> {
  const dir = scratchDir(`disk-${name}`);
  const raw = join(dir, `${name}.raw`);
  const lines = [`label: ${label}`];
  const partitions: BuiltDisk['partitions'] = [];
  let cursor = 1; // MiB
  let number = 0;
  let logicalNumber = 4;
  let extendedOpen = false;
  for (const spec of specs) {
    if (spec.logical) {
      if (label !== 'dos') throw new Error('logical partitions exist only on MBR disks');
      if (!extendedOpen) {
        const rest = specs.slice(specs.indexOf(spec)).reduce((n, s) => n + s.sizeMiB + 1, 0);
        lines.push(`start=${cursor * 2048}, size=${rest * 2048}, type=5`);
        number++;
        extendedOpen = true;
      }
      cursor += 1; // room for the EBR, aligned
      number = Math.max(number, 4);
    }
    const type = spec.type ?? ('swap' in spec.content ? (label === 'gpt' ? 'swap' : '82') : label === 'gpt' ? 'linux' : '83');
    lines.push(`start=${cursor * 2048}, size=${spec.sizeMiB * 2048}, type=${type}`);
    partitions.push({ offset: cursor * MiB, size: spec.sizeMiB * MiB, number: spec.logical ? ++logicalNumber : ++number, spec });
    cursor += spec.sizeMiB;
  }
  await sh('truncate', ['-s', String((cursor + 1) * MiB), raw]);
  await sh('sfdisk', ['--quiet', raw], { input: `${lines.join('\n')}\n` });
  for (const [i, p] of partitions.entries()) {
    const image = await contentImage(dir, i, p.spec);
    if (!image) continue;
    await sh('dd', [`if=${image}`, `of=${raw}`, 'bs=1M', `seek=${p.offset / MiB}`, 'conv=notrunc,sparse', 'status=none']);
  }
  return { raw, partitions };
}

async function contentImage(dir: string, index: number, spec: PartitionSpec): Promise<string | undefined> {
  const c = spec.content;
  if ('empty' in c) return undefined;
  if ('image' in c) return c.image;
  const file = join(dir, `part${index}.img`);
  await sh('truncate', ['-s', String(spec.sizeMiB * MiB), file]);
  if ('swap' in c) {
    await sh('mkswap', ['-q', file]);
    return file;
  }
  const args = [...(c.args ?? [])];
  if (c.files) {
    const tree = join(dir, `tree${index}`);
    mkdirSync(tree, { recursive: true });
    writeTree(tree, c.files);
    args.push('-d', tree);
  }
  await sh(c.mkfs, [...args, file]);
  return file;
}

/** qemu-img convert a raw disk to qcow2 (beside it unless `out` is given). */
export async function toQcow2(raw: string, out = raw.replace(/\.raw$/, '') + '.qcow2', options: string[] = []): Promise<string> {
  await sh('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', ...options, raw, out]);
  return out;
}

/** Whether a tool is on PATH (for tests that explain why they cannot run). */
export async function haveTool(name: string): Promise<boolean> {
  const r = await execa('which', [name], { reject: false });
  return r.exitCode === 0;
}
