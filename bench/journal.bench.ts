/**
 * `-o json` of a 100k-entry journal (written by systemd-journal-remote)
 * through @guestlens/journal, beside `journalctl --file -o json` on the same
 * file: wall time and peak memory. Aim (issue 13): at least 0.5x
 * journalctl's speed, memory flat in the number of entries (a 20k-entry file
 * is measured too, to show it).
 *
 * Ours runs as one esbuild bundle of the library and its test printer under
 * node (as the CLI runs: no TypeScript compiling at start).
 * Set GUESTLENS_BENCH_CACHE=DIR to keep the journal files between runs.
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureCommand, type BenchRow } from './lib.ts';
import { bulkEntries, exportEntry, JOURNAL_REMOTE } from '../packages/journal/test/support/fixtures.ts';

export const title = 'journal: -o json of a 100k-entry journal';

const repo = join(import.meta.dirname, '..');

function makeJournal(path: string, n: number): void {
  if (existsSync(path)) return;
  const parts: Buffer[] = [];
  for (const e of bulkEntries(n)) parts.push(exportEntry(e));
  execFileSync(JOURNAL_REMOTE, [`--output=${path}`, '-'], { input: Buffer.concat(parts), stdio: ['pipe', 'ignore', 'ignore'], maxBuffer: 1 << 30 });
}

export async function run(): Promise<BenchRow[]> {
  const cached = process.env.GUESTLENS_BENCH_CACHE;
  const dir = cached ?? mkdtempSync(join(tmpdir(), 'gltest-bench-journal-'));
  mkdirSync(dir, { recursive: true });
  // The bundle must sit inside the workspace so that lz4-napi (a native module) resolves.
  const bundleDir = mkdtempSync(join(repo, 'packages', 'journal', '.bench-'));
  try {
    const big = join(dir, 'bulk-100k.journal');
    const small = join(dir, 'bulk-20k.journal');
    makeJournal(big, 100_000);
    makeJournal(small, 20_000);
    const bundle = join(bundleDir, 'print.mjs');
    await build({
      entryPoints: [join(repo, 'packages', 'journal', 'test', 'support', 'printJournal.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: bundle,
      external: ['lz4-napi'],
      banner: { js: "import { createRequire as __glRequire } from 'node:module'; const require = __glRequire(import.meta.url);" },
      logLevel: 'error',
    });
    const env = { ...process.env, TZ: 'UTC', SYSTEMD_COLORS: '0' };
    const rows: BenchRow[] = [];
    const peaks: number[] = [];
    for (const [label, file] of [['100k entries', big], ['20k entries', small]] as const) {
      const ours = measureCommand('node', [bundle, '{"mode":"json"}', file], { runs: 3, warmup: 1, env });
      const peer = measureCommand('journalctl', [`--file=${file}`, '-o', 'json'], { runs: 3, warmup: 1, env });
      peaks.push(ours.peakKiB);
      if (label === '100k entries') {
        rows.push({ what: `-o json, ${label}`, unit: 'ms', ours: ours.wallMs, peer: peer.wallMs, peerName: 'journalctl', higherIsBetter: false, aim: '<= 2x journalctl', met: ours.wallMs <= 2 * peer.wallMs });
      } else {
        rows.push({ what: `-o json, ${label}`, unit: 'ms', ours: ours.wallMs, peer: peer.wallMs, peerName: 'journalctl', higherIsBetter: false });
      }
      rows.push({ what: `-o json, ${label}, peak memory`, unit: 'MiB', ours: ours.peakKiB / 1024, peer: peer.peakKiB / 1024, peerName: 'journalctl', higherIsBetter: false });
    }
    rows.push({
      what: 'peak memory, 100k / 20k entries',
      unit: 'ratio',
      ours: peaks[0] / peaks[1],
      peer: 1,
      peerName: '(flat = 1)',
      higherIsBetter: false,
      aim: '< 1.3 (flat)',
      met: peaks[0] / peaks[1] < 1.3,
    });
    return rows;
  } finally {
    rmSync(bundleDir, { recursive: true, force: true });
    if (!cached) rmSync(dir, { recursive: true, force: true });
  }
}
