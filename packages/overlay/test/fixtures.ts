/** Fixture images for the overlay tests, made with the real qemu-img/qemu-io. */
import { createHash } from 'node:crypto';
import { writeFileSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import assert from 'node:assert/strict';
import { sh } from '../../../test/support/run.ts';
import { scratchDir } from '../../../test/support/scratch.ts';

export const MiB = 1024 * 1024;

/** Deterministic, incompressible bytes: a raw disk whose every 64 KiB block differs. */
export function patternBytes(size: number, seed = 'guestlens'): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** A raw image: data in the first half, a hole (zeros) in the second, so formats' sparse paths are exercised too. */
export function makeRawImage(path: string, size = 4 * MiB, seed = 'guestlens'): Buffer {
  const data = Buffer.concat([patternBytes(size / 2, seed), Buffer.alloc(size / 2)]);
  writeFileSync(path, data);
  return data;
}

/** `qemu-img create -f FORMAT [EXTRA] PATH [SIZE]` (no size when a backing file gives it). */
export async function qemuImgCreate(path: string, format: string, size: string | undefined, extra: string[] = []): Promise<void> {
  await sh('qemu-img', ['create', '-q', '-f', format, ...extra, path, ...(size === undefined ? [] : [size])]);
}

/** Write a pattern into an image (fixture set-up only: never after a guard started). */
export async function qemuIoWrite(path: string, format: string, pattern: number, offset: number, length: number): Promise<void> {
  await sh('qemu-io', ['-f', format, '-c', `write -P ${pattern} ${offset} ${length}`, path]);
}

/** `qemu-io -r -c CMD OVERLAY`: what a user of the overlay runs. */
export async function qemuIoRead(overlay: string, command: string, options: { cwd?: string } = {}): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa('qemu-io', ['-r', '-f', 'qcow2', '-c', command, overlay], { reject: false, cwd: options.cwd });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** qemu-io prints "Pattern verification failed" but exits 0 on a mismatch: judge its output. */
export async function assertOverlayReads(overlay: string, command: string, options: { cwd?: string } = {}): Promise<void> {
  const r = await qemuIoRead(overlay, command, options);
  assert.equal(r.exitCode, 0, `qemu-io ${command} ${overlay}: ${r.stderr}${r.stdout}`);
  assert.doesNotMatch(r.stdout + r.stderr, /verification failed|failed|error/i, `qemu-io ${command}: ${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^read \d+\/\d+ bytes/m);
}

/** `qemu-img compare` of the overlay against a reference image: exit 0 means identical guest bytes. */
export async function assertSameGuestBytes(overlay: string, reference: string, referenceFormat: string): Promise<void> {
  const r = await execa('qemu-img', ['compare', '-U', '-f', 'qcow2', '-F', referenceFormat, overlay, reference], { reject: false });
  assert.equal(r.exitCode, 0, `qemu-img compare ${overlay} ${reference}: ${r.stdout}${r.stderr}`);
}

/** The guestlens-* entries of this run's TMPDIR. */
export function productTempEntries(): string[] {
  return readdirSync(tmpdir()).filter((n) => n.startsWith('guestlens-'));
}

export function assertNoOverlayDirs(): void {
  assert.deepEqual(productTempEntries(), [], 'a guestlens-* directory was left in TMPDIR');
}

export function assertGone(path: string): void {
  assert.equal(existsSync(path), false, `${path} still exists`);
}

/**
 * Run `fn` with a PATH whose qemu-img records every invocation before running
 * the real /usr/bin/qemu-img: proof of which files guestlens let QEMU open.
 */
export async function withQemuImgLog<T>(fn: (calls: () => string[][]) => Promise<T>): Promise<T> {
  const bin = scratchDir('qemu-img-log');
  const log = join(bin, 'calls');
  writeFileSync(log, '');
  writeFileSync(join(bin, 'qemu-img'), `#!/bin/sh\nfor a in "$@"; do printf '%s\\0' "$a"; done >> '${log}'\nprintf '\\001' >> '${log}'\nexec /usr/bin/qemu-img "$@"\n`, { mode: 0o755 });
  const calls = () =>
    readFileSync(log, 'latin1')
      .split('\u0001')
      .filter((c) => c !== '')
      .map((c) => Buffer.from(c, 'latin1').toString('utf8').split('\0').slice(0, -1));
  const saved = process.env.PATH;
  process.env.PATH = `${bin}:${saved}`;
  try {
    return await fn(calls);
  } finally {
    process.env.PATH = saved;
  }
}

/** Whether any logged qemu-img call named `path` as an argument (or inside a json: argument). */
export function namedIn(calls: string[][], path: string): boolean {
  return calls.some((args) => args.some((a) => a === path || (a.startsWith('json:') && a.includes(JSON.stringify(path)))));
}
