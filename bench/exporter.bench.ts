/**
 * guestlens exporter over a fleet of GUESTLENS_BENCH_FLEET (default 200)
 * distinct guest images (sizes 32-160 MiB; ext4, ext2, XFS, FAT; bare,
 * MBR and GPT; raw and qcow2; each with its own files), refreshed back to
 * back: CPU per refresh cycle (the exporter and every program it starts),
 * RSS after the first cycles and after GUESTLENS_BENCH_CYCLES (default 60,
 * an hour at the default 60 s interval), and the latency of /metrics while
 * cycles run. Aims (issue 16): < 10% of one core averaged at a 60 s
 * interval, RSS flat, /metrics in < 50 ms under refresh.
 * The peer: virt-df, which boots an appliance per guest, timed on one guest
 * and multiplied by the fleet (the only way it reads a fleet).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { measureCommand, median, type BenchRow } from './lib.ts';

export const title = 'exporter: a fleet of guest images refreshed back to back';

const REPO = join(import.meta.dirname, '..');
const GUESTLENS = join(REPO, 'cli', 'bin', 'guestlens');
const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sh(file: string, args: string[], input?: string): void {
  const r = spawnSync(file, args, { input, stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')}: ${r.stderr?.toString()}`);
}

/** Guest n of the fleet: its layout, filesystem, size and format vary with n. */
function makeGuest(dir: string, n: number): string {
  const work = join(dir, `work-${n}`);
  mkdirSync(join(work, 'tree', 'etc'), { recursive: true });
  writeFileSync(join(work, 'tree', 'etc', 'hostname'), `guest${n}\n`);
  writeFileSync(join(work, 'tree', 'data.bin'), Buffer.alloc((n % 7) * 256 * 1024, n & 0xff));
  const fsKinds = ['ext4', 'ext4', 'ext2', 'xfs', 'vfat', 'ext4'];
  const kind = fsKinds[n % fsKinds.length];
  const sizeMiB = kind === 'xfs' ? 320 : 32 + (n % 5) * 32;
  const part = join(work, 'fs.img');
  sh('truncate', ['-s', `${sizeMiB}M`, part]);
  if (kind === 'xfs') sh('mkfs.xfs', ['-q', '-f', part]);
  else if (kind === 'vfat') sh('mkfs.vfat', [part]);
  else sh(`mkfs.${kind}`, ['-q', '-F', '-d', join(work, 'tree'), part]);
  const layout = n % 3; // 0 bare, 1 MBR, 2 GPT
  let raw = part;
  if (layout) {
    raw = join(work, 'disk.raw');
    sh('truncate', ['-s', `${sizeMiB + 2}M`, raw]);
    sh('sfdisk', ['--quiet', raw], `label: ${layout === 1 ? 'dos' : 'gpt'}\nstart=2048, size=${sizeMiB * 2048}\n`);
    sh('dd', [`if=${part}`, `of=${raw}`, 'bs=1M', 'seek=1', 'conv=notrunc,sparse', 'status=none']);
  }
  const out = join(dir, 'fleet', `guest${String(n).padStart(3, '0')}.${n % 2 ? 'qcow2' : 'raw'}`);
  if (n % 2) sh('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, out]);
  else sh('cp', ['--sparse=always', raw, out]);
  rmSync(work, { recursive: true, force: true });
  return out;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** CPU seconds of a process and its descendants still running, plus what its waited-for children used. */
function cpuSeconds(pid: number): number {
  const tick = 100;
  let total = 0;
  const visit = (p: number) => {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').slice(readFileSync(`/proc/${p}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
      total += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / tick;
      for (const t of readdirSync(`/proc/${p}/task`)) {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) visit(Number(c));
      }
    } catch {
      // exited meanwhile
    }
  };
  visit(pid);
  return total;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export async function run(): Promise<BenchRow[]> {
  const fleetSize = Number(process.env.GUESTLENS_BENCH_FLEET ?? 200);
  const cycles = Number(process.env.GUESTLENS_BENCH_CYCLES ?? 60);
  const dir = mkdtempSync(join(tmpdir(), 'gltest-bench-exporter-'));
  mkdirSync(join(dir, 'fleet'));
  const images: string[] = [];
  for (let n = 0; n < fleetSize; n++) images.push(makeGuest(dir, n));
  const port = await freePort();
  const child = spawn(GUESTLENS, ['exporter', '--listen', `127.0.0.1:${port}`, '--image', join(dir, 'fleet', '*'), '--interval', '0.1', '--concurrency', '4', '--timeout', '60'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const scrape = async () => {
    const started = performance.now();
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return { ms: performance.now() - started, text };
  };
  const refreshes = (text: string) => Number(/^guestlens_exporter_refreshes_total (\d+)/m.exec(text)?.[1] ?? 0);
  try {
    let done = 0;
    const deadline = Date.now() + 30 * 60000;
    while (done < 1) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the exporter did not finish its first cycle: ${stderr.slice(-2000)}`);
      await sleep(500);
      done = await scrape().then((s) => refreshes(s.text), () => 0);
    }
    const first = await scrape();
    const up = (first.text.match(/^guestlens_guest_up\{[^}]*\} 1$/gm) ?? []).length;
    if (up !== fleetSize) throw new Error(`${up} of ${fleetSize} guests up after the first cycle: ${stderr.slice(-2000)}`);
    // Warm: a few cycles, then measure.
    while (refreshes((await scrape()).text) < 4) await sleep(200);
    const rssEarly = rssMiB(child.pid!);
    const startCycles = refreshes((await scrape()).text);
    const cpu0 = cpuSeconds(child.pid!);
    const wall0 = performance.now();
    const latencies: number[] = [];
    let cycleSeconds: number[] = [];
    while (refreshes((await scrape()).text) < startCycles + cycles) {
      const s = await scrape();
      latencies.push(s.ms);
      cycleSeconds.push(Number(/^guestlens_exporter_refresh_duration_seconds (\S+)/m.exec(s.text)?.[1]));
      await sleep(50);
    }
    const cpuPerCycle = (cpuSeconds(child.pid!) - cpu0) / cycles;
    const wallPerCycle = (performance.now() - wall0) / 1000 / cycles;
    const rssLate = rssMiB(child.pid!);
    cycleSeconds = cycleSeconds.filter(Number.isFinite);
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))];

    const peer = measureCommand('virt-df', ['-a', images[1]], { runs: 1, warmup: 0, env: { ...process.env, LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' } });
    const peerCycleS = (peer.wallMs / 1000) * fleetSize;
    const percentAt60 = (cpuPerCycle / 60) * 100;
    return [
      { what: `one refresh cycle of ${fleetSize} guests, wall (median ${median(cycleSeconds).toFixed(2)} s)`, unit: 's', ours: wallPerCycle, peer: peerCycleS, peerName: `virt-df x ${fleetSize} (one guest timed)`, higherIsBetter: false },
      { what: 'CPU per refresh cycle (exporter and its programs)', unit: 'CPU s', ours: cpuPerCycle, peer: peerCycleS, peerName: 'virt-df wall x fleet', higherIsBetter: false },
      { what: 'CPU averaged at a 60 s interval', unit: '% of a core', ours: percentAt60, peer: 100 * peerCycleS / 60, peerName: 'virt-df (cannot keep up)', higherIsBetter: false, aim: '< 10%', met: percentAt60 < 10 },
      { what: `RSS after ${cycles} more cycles (after 4: ${rssEarly.toFixed(0)} MiB)`, unit: 'MiB', ours: rssLate, peer: peer.peakKiB / 1024, peerName: 'virt-df peak (without its appliance)', higherIsBetter: false, aim: 'flat (< +20%)', met: rssLate < rssEarly * 1.2 },
      { what: `/metrics under refresh, p99 of ${latencies.length} (median ${median(latencies).toFixed(1)} ms)`, unit: 'ms', ours: p99, peer: peer.wallMs, peerName: 'virt-df one guest', higherIsBetter: false, aim: '< 50 ms', met: p99 < 50 },
    ];
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}
