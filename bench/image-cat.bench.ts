/**
 * Sequential read of a 1 GiB virtual disk through `guestlens image cat` (to
 * /dev/null), uncompressed, deflate and zstd, beside `qemu-img convert -O raw`
 * of the same image into a scratch file on tmpfs (/dev/shm), and beside
 * reading the raw file itself. Aims (issue 4): at least qemu-img's throughput
 * uncompressed, at least 0.8x compressed, peak memory under 150 MiB.
 *
 * The disk holds what real disks hold: the contents of the machine's
 * /usr/lib and /usr/share (binaries, libraries, text), some zeros between.
 * Set GUESTLENS_BENCH_CACHE=DIR to keep the images between runs.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureCommand, type BenchRow } from './lib.ts';

export const title = 'image cat: sequential read of a 1 GiB disk';

const repo = join(import.meta.dirname, '..');
const cli = join(repo, 'cli', 'bin', 'guestlens.mjs');
const GiB = 1024 * 1024 * 1024;
const MB = 1e6;

/** 1 GiB of file contents from /usr, with a 1 MiB hole after every 31 MiB of data. */
export function makeDisk(path: string): void {
  const out = openSync(path, 'w');
  const buf = Buffer.alloc(4 * 1024 * 1024);
  let written = 0;
  let sinceHole = 0;
  const walk = function* (dir: string): Generator<string> {
    let entries: string[] = [];
    try {
      entries = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const name of entries) {
      const p = join(dir, name);
      let st;
      try {
        st = statSync(p, { throwIfNoEntry: false });
      } catch {
        continue;
      }
      if (!st) continue;
      if (st.isDirectory()) yield* walk(p);
      else if (st.isFile() && st.size > 0) yield p;
    }
  };
  try {
    outer: for (const root of ['/usr/lib', '/usr/share', '/usr/bin']) {
      for (const file of walk(root)) {
        let fd: number;
        try {
          fd = openSync(file, 'r');
        } catch {
          continue;
        }
        try {
          for (;;) {
            const want = Math.min(buf.length, GiB - written, 31 * 1024 * 1024 - sinceHole);
            const n = readSync(fd, buf, 0, want, null);
            if (n === 0) break;
            writeSync(out, buf, 0, n, written);
            written += n;
            sinceHole += n;
            if (sinceHole >= 31 * 1024 * 1024) {
              written = Math.min(GiB, written + 1024 * 1024);
              sinceHole = 0;
            }
            if (written >= GiB) break outer;
          }
        } finally {
          closeSync(fd);
        }
      }
    }
  } finally {
    closeSync(out);
  }
  execFileSync('truncate', ['-s', String(GiB), path]);
}

function prepare(dir: string): Record<'raw' | 'uncompressed' | 'deflate' | 'zstd', string> {
  const files = {
    raw: join(dir, 'disk.raw'),
    uncompressed: join(dir, 'disk.qcow2'),
    deflate: join(dir, 'disk-deflate.qcow2'),
    zstd: join(dir, 'disk-zstd.qcow2'),
  };
  if (!existsSync(files.raw)) makeDisk(files.raw);
  if (!existsSync(files.uncompressed)) execFileSync('qemu-img', ['convert', '-O', 'qcow2', files.raw, files.uncompressed]);
  if (!existsSync(files.deflate)) execFileSync('qemu-img', ['convert', '-c', '-O', 'qcow2', '-o', 'compression_type=zlib', files.raw, files.deflate]);
  if (!existsSync(files.zstd)) execFileSync('qemu-img', ['convert', '-c', '-O', 'qcow2', '-o', 'compression_type=zstd', files.raw, files.zstd]);
  return files;
}

export async function run(): Promise<BenchRow[]> {
  const cached = process.env.GUESTLENS_BENCH_CACHE;
  const dir = cached ?? mkdtempSync(join(tmpdir(), 'gltest-bench-image-cat-'));
  mkdirSync(dir, { recursive: true });
  const shm = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'gltest-bench-'));
  try {
    const files = prepare(dir);
    const rows: BenchRow[] = [];
    let peakOurs = 0;
    let peakPeer = 0;
    for (const kind of ['uncompressed', 'deflate', 'zstd'] as const) {
      const image = files[kind];
      const ours = measureCommand('node', [cli, 'image', 'cat', '--format', 'qcow2', image], { runs: 3, warmup: 1 });
      const peer = measureCommand('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', image, join(shm, 'out.raw')], { runs: 3, warmup: 1 });
      rmSync(join(shm, 'out.raw'), { force: true });
      const oursMBs = GiB / MB / (ours.wallMs / 1000);
      const peerMBs = GiB / MB / (peer.wallMs / 1000);
      const aim = kind === 'uncompressed' ? 1 : 0.8;
      rows.push({ what: `qcow2 ${kind}, 1 GiB`, unit: 'MB/s', ours: oursMBs, peer: peerMBs, peerName: 'qemu-img convert to tmpfs', higherIsBetter: true, aim: `>= ${aim}x`, met: oursMBs >= aim * peerMBs });
      rows.push({ what: `qcow2 ${kind}, peak memory`, unit: 'MiB', ours: ours.peakKiB / 1024, peer: peer.peakKiB / 1024, peerName: 'qemu-img convert', higherIsBetter: false, aim: '< 150 MiB', met: ours.peakKiB / 1024 < 150 });
      peakOurs = Math.max(peakOurs, ours.peakKiB);
      peakPeer = Math.max(peakPeer, peer.peakKiB);
    }
    const oursRaw = measureCommand('node', [cli, 'image', 'cat', '--format', 'raw', files.raw], { runs: 3, warmup: 1 });
    const catRaw = measureCommand('cat', [files.raw], { runs: 3, warmup: 1 });
    rows.push({ what: 'raw file, 1 GiB', unit: 'MB/s', ours: GiB / MB / (oursRaw.wallMs / 1000), peer: GiB / MB / (catRaw.wallMs / 1000), peerName: 'cat(1) to /dev/null', higherIsBetter: true });
    return rows;
  } finally {
    rmSync(shm, { recursive: true, force: true });
    if (!cached) rmSync(dir, { recursive: true, force: true });
  }
}
