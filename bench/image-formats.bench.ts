/**
 * Sequential read of a 1 GiB virtual disk in each format guestlens reads
 * natively beside qcow2 (vmdk monolithicSparse, monolithicFlat and
 * streamOptimized, vdi, vhdx, vpc dynamic and fixed) through
 * `guestlens image cat` (to /dev/null), beside `qemu-img convert -O raw` of
 * the same image into a scratch file on tmpfs (/dev/shm), in one run.
 * Aims (issue 17): at least qemu-img's throughput for uncompressed formats,
 * at least 0.8x for streamOptimized vmdk.
 *
 * The disk is image-cat's: the machine's /usr contents with holes.
 * Set GUESTLENS_BENCH_CACHE=DIR to keep the images between runs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureCommand, type BenchRow } from './lib.ts';
import { makeDisk } from './image-cat.bench.ts';

export const title = 'image cat per format: sequential read of a 1 GiB disk';

const repo = join(import.meta.dirname, '..');
const cli = join(repo, 'cli', 'bin', 'guestlens.mjs');
const GiB = 1024 * 1024 * 1024;
const MB = 1e6;

const FORMATS: { name: string; format: string; options: string[]; compressed?: boolean }[] = [
  { name: 'vmdk monolithicSparse', format: 'vmdk', options: [] },
  { name: 'vmdk monolithicFlat', format: 'vmdk', options: ['-o', 'subformat=monolithicFlat'] },
  { name: 'vmdk streamOptimized', format: 'vmdk', options: ['-o', 'subformat=streamOptimized'], compressed: true },
  { name: 'vdi', format: 'vdi', options: [] },
  { name: 'vhdx', format: 'vhdx', options: [] },
  { name: 'vpc dynamic', format: 'vpc', options: [] },
  { name: 'vpc fixed', format: 'vpc', options: ['-o', 'subformat=fixed'] },
];

export async function run(): Promise<BenchRow[]> {
  const cached = process.env.GUESTLENS_BENCH_CACHE;
  const dir = cached ?? mkdtempSync(join(tmpdir(), 'gltest-bench-image-formats-'));
  mkdirSync(dir, { recursive: true });
  const shm = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'gltest-bench-'));
  try {
    const raw = join(dir, 'disk.raw');
    if (!existsSync(raw)) makeDisk(raw);
    const rows: BenchRow[] = [];
    for (const f of FORMATS) {
      const image = join(dir, `disk-${f.name.replace(/\s+/g, '-')}.${f.format === 'vpc' ? 'vhd' : f.format}`);
      if (!existsSync(image)) execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', f.format, ...f.options, raw, image]);
      const ours = measureCommand('node', [cli, 'image', 'cat', '--format', f.format, image], { runs: 3, warmup: 1 });
      const peer = measureCommand('qemu-img', ['convert', '-f', f.format, '-O', 'raw', image, join(shm, 'out.raw')], { runs: 3, warmup: 1 });
      rmSync(join(shm, 'out.raw'), { force: true });
      const oursMBs = GiB / MB / (ours.wallMs / 1000);
      const peerMBs = GiB / MB / (peer.wallMs / 1000);
      const aim = f.compressed ? 0.8 : 1;
      rows.push({ what: `${f.name}, 1 GiB`, unit: 'MB/s', ours: oursMBs, peer: peerMBs, peerName: 'qemu-img convert to tmpfs', higherIsBetter: true, aim: `>= ${aim}x`, met: oursMBs >= aim * peerMBs });
      rows.push({ what: `${f.name}, peak memory`, unit: 'MiB', ours: ours.peakKiB / 1024, peer: peer.peakKiB / 1024, peerName: 'qemu-img convert', higherIsBetter: false, aim: '< 150 MiB', met: ours.peakKiB / 1024 < 150 });
    }
    return rows;
  } finally {
    rmSync(shm, { recursive: true, force: true });
    if (!cached) rmSync(dir, { recursive: true, force: true });
  }
}
