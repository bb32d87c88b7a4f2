/** Images with known data made by qemu-img / qemu-io, and checks that a daemon and its directory are gone. */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, openSync, writeSync, closeSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { sh, shLuks } from '../../../test/support/run.ts';
import { Prng } from '../../../test/support/prng.ts';
import { waitFor } from '../../../test/support/processes.ts';
import type { BlockSource } from '@guestlens/block';

export const MiB = 1024 * 1024;
export const PASS = 'correct horse battery staple';

/** Where the known data goes: far apart, unaligned, one run across the end. */
export function dataRuns(size: number): Array<[number, number]> {
  return [
    [0, 70_000],
    [Math.floor(size / 3) + 12_345, 200_000],
    [Math.floor(size / 2) - 1, 3],
    [size - 4096 * 3 - 7, 4096 * 3 + 7],
  ];
}

/** A sparse raw file with random data in `dataRuns`, converted by qemu-img to `format`. */
export async function makeImage(dir: string, format: string, size: number, seed: number): Promise<string> {
  const raw = join(dir, `src-${format}.raw`);
  const fd = openSync(raw, 'w');
  ftruncateSync(fd, size);
  const rng = new Prng(seed);
  for (const [at, n] of dataRuns(size)) writeSync(fd, rng.bytes(n), 0, n, at);
  closeSync(fd);
  const image = join(dir, `disk.${format}`);
  await sh('qemu-img', ['convert', '-f', 'raw', '-O', format, raw, image]);
  return image;
}

/** A LUKS image (fast key derivation for the tests), with qemu-io patterns written at far-apart offsets. */
export async function makeLuks(dir: string, size: number): Promise<string> {
  const image = join(dir, 'disk.luks');
  const secretFile = join(dir, 'pass');
  writeFileSync(secretFile, PASS, { mode: 0o600 });
  const obj = `secret,id=s0,file=${secretFile}`;
  await shLuks('qemu-img', ['create', '-q', '-f', 'luks', '--object', obj, '-o', 'key-secret=s0,iter-time=10', image, String(size)]);
  const writes = dataRuns(size).map(([at, n], i) => ['-c', `write -P 0x${(0x31 + i).toString(16)} ${Math.floor(at / 512) * 512} ${Math.ceil(n / 512) * 512}`]);
  await sh('qemu-io', ['--object', obj, '--image-opts', `driver=luks,key-secret=s0,file.filename=${image}`, ...writes.flat()]);
  return image;
}

/** The guest bytes as qemu-img sees them: `qemu-img convert -O raw`. */
export async function rawOf(dir: string, image: string, format: string, secret?: string): Promise<string> {
  const out = join(dir, `ref-${format}.raw`);
  if (secret) {
    const secretFile = join(dir, 'ref-pass');
    writeFileSync(secretFile, secret, { mode: 0o600 });
    await sh('qemu-img', ['convert', '--object', `secret,id=s0,file=${secretFile}`, '--image-opts', `driver=luks,key-secret=s0,file.filename=${image}`, '-O', 'raw', out]);
  } else {
    await sh('qemu-img', ['convert', '-f', format, '-O', 'raw', image, out]);
  }
  return out;
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export function sha256FileSync(path: string): string {
  return sha256(readFileSync(path));
}

/** sha256 of everything a source reads, in big sequential reads. */
export async function sha256Source(source: BlockSource, step = 16 * MiB): Promise<string> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(Math.min(step, source.size));
  for (let at = 0; at < source.size; at += step) {
    const n = Math.min(step, source.size - at);
    await source.readInto!(buf, 0, at, n);
    h.update(buf.subarray(0, n));
  }
  return h.digest('hex');
}

/** Whether `pid` is a live process (a zombie counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Pids whose command line contains `text` (pgrep -f, the pattern taken literally). */
export async function pgrep(text: string): Promise<number[]> {
  const pattern = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const r = await execa('pgrep', ['-f', pattern], { reject: false });
  return r.stdout.split('\n').filter(Boolean).map(Number).filter((p) => p !== process.pid);
}

/** Wait until the daemon `pid` serving `socket` is gone, and its directory too. */
export async function assertDaemonGone(d: { pid: number; socket: string; dir: string }, timeoutMs = 5000): Promise<void> {
  await waitFor(`daemon ${d.pid} (${d.socket}) to exit`, async () => !alive(d.pid) && (await pgrep(d.socket)).length === 0, timeoutMs);
  await waitFor(`${d.dir} to be removed`, () => !existsSync(d.dir), timeoutMs);
}
