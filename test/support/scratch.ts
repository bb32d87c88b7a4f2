/**
 * Scratch space for fixtures. Everything lives under one directory per test
 * run (prefix "gltest-", never "guestlens-", so the leftover check in
 * rootHooks.ts can tell the product's temporary files from the tests' own).
 */
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let root: string | undefined;

export function scratchRoot(): string {
  root ??= mkdtempSync(join(tmpdir(), 'gltest-'));
  return root;
}

let counter = 0;
/** A fresh directory under the run's scratch root. */
export function scratchDir(label = 'd'): string {
  const dir = join(scratchRoot(), `${label.replace(/[^A-Za-z0-9_.-]/g, '_')}-${++counter}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function removeScratch(): void {
  if (root && !process.env.GUESTLENS_KEEP_SCRATCH) rmSync(root, { recursive: true, force: true });
  root = undefined;
}
