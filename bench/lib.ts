/**
 * Shared benchmark plumbing. A benchmark measures our figure and a peer's
 * (qemu-img, the kernel, virt-df) in the same run and prints both with the
 * ratio, so the comparison never mixes machines or days.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Measurement {
  /** Median wall time over the runs, milliseconds. */
  wallMs: number;
  /** Peak resident memory of the slowest-memory run, KiB (from GNU time). */
  peakKiB: number;
  runs: number;
}

export interface BenchRow {
  what: string;
  unit: string;
  ours: number;
  peer: number;
  peerName: string;
  /** True when a bigger number is better (throughput); false for time and memory. */
  higherIsBetter: boolean;
  /** The aim the issue set, as text ("< 150 ms"), and whether we meet it. */
  aim?: string;
  met?: boolean;
}

/** Run a command `runs` times (after `warmup` unmeasured runs) under GNU time. */
export function measureCommand(file: string, args: string[], options: { runs?: number; warmup?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Measurement {
  const runs = options.runs ?? 5;
  const warmup = options.warmup ?? 1;
  const walls: number[] = [];
  let peak = 0;
  const dir = mkdtempSync(join(tmpdir(), 'gltest-bench-'));
  try {
    const timeOut = join(dir, 'time');
    for (let i = 0; i < warmup + runs; i++) {
      const start = process.hrtime.bigint();
      const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', timeOut, file, ...args], {
        env: options.env ?? process.env,
        cwd: options.cwd,
        stdio: ['ignore', 'ignore', 'pipe'],
        maxBuffer: 64 * 1024 * 1024,
      });
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (r.status !== 0) throw new Error(`${file} ${args.join(' ')} failed (${r.status}): ${r.stderr?.toString().slice(-2000)}`);
      if (i < warmup) continue;
      walls.push(ms);
      peak = Math.max(peak, Number(readFileSync(timeOut, 'utf8').trim().split('\n').pop()));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { wallMs: median(walls), peakKiB: peak, runs };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fmt(n: number): string {
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}

/** Print rows as a table: what, ours, peer, ratio (ours/peer), aim. */
export function printRows(title: string, rows: BenchRow[]): void {
  console.log(`\n## ${title}`);
  const header = ['measure', 'guestlens', 'peer', 'ratio', 'aim'];
  const lines = rows.map((r) => [
    `${r.what} (${r.unit})`,
    fmt(r.ours),
    `${fmt(r.peer)} ${r.peerName}`,
    `${(r.ours / r.peer).toFixed(2)}x${r.higherIsBetter ? ' (higher is better)' : ''}`,
    r.aim ? `${r.aim} ${r.met === undefined ? '' : r.met ? 'met' : 'NOT met'}` : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const row = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  console.log(row(header));
  for (const l of lines) console.log(row(l));
}
