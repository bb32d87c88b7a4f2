/**
 * Overlay create + remove: our createOverlay() + close() beside the bare
 * `qemu-img create` of the same overlay + rm, both timed in this process and
 * both spawning through execa, interleaved run by run so drift hits both.
 * The aim (issue 3): our overhead over qemu-img under 20%.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { backingJson, createOverlay } from '../packages/overlay/src/index.ts';
import { measureCommand, median, type BenchRow } from './lib.ts';

export const title = 'overlay create + remove (median of interleaved runs)';

const RUNS = 81;
const WARMUP = 5;
const AIM = 1.2;

async function time(fn: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function compare(what: string, image: string, format: string, scratch: string): Promise<BenchRow> {
  const backing = backingJson({ format, filename: image });
  const peerPath = join(scratch, 'peer.overlay.qcow2');
  const ours = async () => {
    const overlay = await createOverlay(image, { dir: scratch });
    await overlay.close();
  };
  const peer = async () => {
    const r = await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', format, '-b', backing, peerPath], { reject: false });
    if (r.exitCode !== 0) throw new Error(`qemu-img create failed: ${r.stderr}`);
    await rm(peerPath);
  };
  const oursMs: number[] = [];
  const peerMs: number[] = [];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    // Alternate which goes first, so neither always runs on a warmer cache.
    const pair = i % 2 === 0 ? [ours, peer] : [peer, ours];
    const times = [await time(pair[0]), await time(pair[1])];
    if (i < WARMUP) continue;
    oursMs.push(i % 2 === 0 ? times[0] : times[1]);
    peerMs.push(i % 2 === 0 ? times[1] : times[0]);
  }
  const o = median(oursMs);
  const p = median(peerMs);
  return { what, unit: 'ms', ours: o, peer: p, peerName: 'qemu-img create + rm', higherIsBetter: false, aim: `< ${AIM.toFixed(2)}x`, met: o / p < AIM };
}

export async function run(): Promise<BenchRow[]> {
  const scratch = mkdtempSync(join(tmpdir(), 'gltest-bench-overlay-'));
  try {
    const raw = join(scratch, 'disk.raw');
    writeFileSync(raw, Buffer.alloc(0));
    await execa('truncate', ['-s', '1G', raw]);
    const qcow2 = join(scratch, 'disk.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', qcow2, '1G']);
    const chained = join(scratch, 'chained.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', raw, chained]);

    const rows: BenchRow[] = [];
    rows.push(await compare('raw image, API', raw, 'raw', scratch));
    rows.push(await compare('qcow2 image, API', qcow2, 'qcow2', scratch));
    // Informational: a backing file costs one `qemu-img info` per level, which the bare create skips (and so skips the policy check).
    const chain = await compare('qcow2 -> raw chain, API', chained, 'qcow2', scratch);
    rows.push({ ...chain, aim: undefined, met: undefined });

    // Informational: the CLI, whole process (node start-up included) against qemu-img's whole process.
    const cliTmp = join(scratch, 'cli-tmp');
    await execa('mkdir', [cliTmp]);
    const cli = measureCommand(process.execPath, [join(import.meta.dirname, '..', 'cli', 'bin', 'guestlens.mjs'), 'overlay', 'create', '--keep', qcow2], { runs: 11, env: { ...process.env, TMPDIR: cliTmp } });
    const bare = measureCommand('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', backingJson({ format: 'qcow2', filename: qcow2 }), join(scratch, 'cli-peer.qcow2')], { runs: 11 });
    rows.push({ what: 'qcow2 image, CLI process (--keep)', unit: 'ms', ours: cli.wallMs, peer: bare.wallMs, peerName: 'qemu-img create', higherIsBetter: false });
    return rows;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
