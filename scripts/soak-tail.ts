/**
 * A long run of guestlens tail -f on a live guest (bench/tailSession.ts),
 * outside the test suite: `pnpm exec tsx scripts/soak-tail.ts [--minutes 10]
 * [--interval 1] [--log-mib 256]`. A writer appends numbered lines in a
 * changing pattern (steady fsynced lines, bursts of 10,000, lines longer
 * than a block, lines left to the kernel's writeback, idle stretches); every
 * minute, and at the end, it prints lines written / printed / lost /
 * doubled, the latency after fsync (median, p99, max), the follower's CPU
 * over the last minute and its memory. Exit 1 when a line was lost, doubled
 * or out of order. Needs root (loop mounts) and qemu-storage-daemon.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile, TailSession } from '../bench/tailSession.ts';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`soak-tail: --${name} ${process.argv[i + 1]}: give a positive number`);
    process.exit(2);
  }
  return v;
}

const minutes = option('minutes', 10);
const interval = option('interval', 1);
const logMiB = option('log-mib', 256);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'gltest-soak-tail-'));
const session = await TailSession.create(dir, logMiB);
let failed = false;
try {
  await session.startFollowerReady({ intervalS: interval });
  const start = Date.now();
  let lastReport = start;
  let lastCpu = session.usage().cpuS;
  let phase = 0;
  const report = (final: boolean) => {
    const lat = session.latencies();
    const u = session.usage();
    const cpu = ((u.cpuS - lastCpu) / ((Date.now() - lastReport) / 1000)) * 100;
    lastCpu = u.cpuS;
    lastReport = Date.now();
    const lost = final ? session.lost() : 'n/a';
    console.log(
      `${((Date.now() - start) / 60000).toFixed(1)} min: written ${session.written}, printed ${session.received}, lost ${lost}, doubled ${session.duplicates}, out of order ${session.outOfOrder}; ` +
        `latency median ${percentile(lat, 0.5)} ms, p99 ${percentile(lat, 0.99)} ms, max ${lat.at(-1) ?? 'n/a'} ms; CPU ${cpu.toFixed(1)}% of a core; memory ${u.rssMiB.toFixed(0)} MiB`,
    );
  };
  while (Date.now() - start < minutes * 60000) {
    switch (phase++ % 6) {
      case 0: // steady
        for (let i = 0; i < 40; i++) {
          session.write(3);
          await sleep(150);
        }
        break;
      case 1: // a burst
        session.write(10000, { pad: 30 });
        await sleep(3000);
        break;
      case 2: // long lines
        for (let i = 0; i < 20; i++) session.write(1, { pad: 6000 + i });
        await sleep(2000);
        break;
      case 3: // writeback only
        for (let i = 0; i < 30; i++) {
          session.write(2, { sync: false });
          await sleep(100);
        }
        break;
      case 4: // idle
        await sleep(10000);
        break;
      default:
        await session.sync();
        await sleep(2000);
    }
    if (Date.now() - lastReport >= 60000) report(false);
  }
  await session.sync();
  await session.waitForAll(60000);
  report(true);
  failed = session.lost() + session.duplicates + session.outOfOrder + session.garbled.length > 0;
  if (failed) console.log(`FAILED: lines never printed ${JSON.stringify(session.lostRanges().slice(0, 20))}; garbled ${session.garbled.length}: ${session.garbled.slice(0, 5).join('; ')}; the follower said: ${session.stderr}`);
} finally {
  await session.close();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
