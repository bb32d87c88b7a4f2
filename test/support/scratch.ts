/**
 * Scratch space for one test run. Everything lives under one directory
 * (prefix "gltest-") that is removed at the end. Its `tmp/` subdirectory
 * becomes TMPDIR for the run, for us and every process we start, so the
 * product's own temporary files (prefix "guestlens-") can be checked for
 * leftovers without seeing those of another run on the same machine.
 */
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let root: string | undefined;

export function scratchRoot(): string {
  if (!root) {
    root = mkdtempSync(join(tmpdir(), 'gltest-'));
    mkdirSync(join(root, 'tmp'));
  }
  return root;
}

/** The TMPDIR every product call in this run uses. */
export function runTmpDir(): string {
  return join(scratchRoot(), 'tmp');
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
