/**
 * guestlens df against virt-df (TCG, the only libguestfs backend that works on
 * this machine) on the same sample guest image; and guestlens df over 100
 * images. Aims (issue 6): one image < 150 ms and < 100 MiB; 100 images < 3 s.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureCommand, type BenchRow } from './lib.ts';

export const title = 'guestlens df vs virt-df';

const repo = join(import.meta.dirname, '..');
const cli = join(repo, 'cli', 'bin', 'guestlens');

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'gltest-bench-df-'));
  try {
    const image = join(dir, 'guest.qcow2');
    execFileSync('bash', [join(repo, 'scripts', 'make-sample-image.sh'), image], { stdio: 'ignore' });
    const many: string[] = [];
    for (let i = 0; i < 100; i++) {
      const copy = join(dir, `guest-${String(i).padStart(3, '0')}.qcow2`);
      copyFileSync(image, copy);
      many.push(copy);
    }
    const ours = measureCommand(cli, ['df', image], { runs: 10, warmup: 2 });
    const oursMany = measureCommand(cli, ['df', '-P', '8', ...many], { runs: 3, warmup: 1 });
    const virtDf = measureCommand('virt-df', ['-a', image], {
      runs: 1,
      warmup: 1,
      env: { ...process.env, LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' },
    });
    return [
      { what: 'df, one qcow2 image, wall', unit: 'ms', ours: ours.wallMs, peer: virtDf.wallMs, peerName: 'virt-df', higherIsBetter: false, aim: '< 150 ms', met: ours.wallMs < 150 },
      { what: 'df, one qcow2 image, peak memory', unit: 'MiB', ours: ours.peakKiB / 1024, peer: virtDf.peakKiB / 1024, peerName: 'virt-df', higherIsBetter: false, aim: '< 100 MiB', met: ours.peakKiB / 1024 < 100 },
      { what: 'df, 100 images (-P 8), wall', unit: 'ms', ours: oursMany.wallMs, peer: virtDf.wallMs * 100, peerName: 'virt-df x100 (estimated from one run)', higherIsBetter: false, aim: '< 3000 ms', met: oursMany.wallMs < 3000 },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
