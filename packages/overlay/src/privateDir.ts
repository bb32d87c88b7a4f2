/**
 * The private 0700 directories overlays live in, and the promise that they
 * never outlive the process: removed on close, on normal exit, on an uncaught
 * error (Node still emits 'exit'), and on SIGINT, SIGTERM and SIGHUP.
 *
 * Signal handlers exist only while some overlay does, so a process without
 * overlays keeps Node's default behaviour. When our handler is the only one
 * for a signal, it removes the directories, steps aside and re-raises the
 * signal, so the process still dies of it (shells see 130 / 143). When the
 * program has its own handler, dying is that handler's decision; we only
 * clean up.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TempDirError } from './errors.ts';

/** Every temporary name guestlens makes starts with this, so leftovers are easy to find (and to test for). */
export const PRIVATE_DIR_PREFIX = 'guestlens-overlay-';

const CLEANUP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type CleanupSignal = (typeof CLEANUP_SIGNALS)[number];

const live = new Set<string>();
let installed = false;

const signalHandlers: Record<CleanupSignal, () => void> = {
  SIGINT: () => onSignal('SIGINT'),
  SIGTERM: () => onSignal('SIGTERM'),
  SIGHUP: () => onSignal('SIGHUP'),
};

function onSignal(signal: CleanupSignal): void {
  removeAllSync();
  const othersListen = process.listenerCount(signal) > 1;
  uninstall();
  if (!othersListen) process.kill(process.pid, signal);
}

function onExit(): void {
  removeAllSync();
}

function removeAllSync(): void {
  for (const dir of live) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // Nothing more can be done while the process is going away.
    }
  }
  live.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const s of CLEANUP_SIGNALS) process.on(s, signalHandlers[s]);
  process.on('exit', onExit);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const s of CLEANUP_SIGNALS) process.removeListener(s, signalHandlers[s]);
  process.removeListener('exit', onExit);
}

/** Create `parent/guestlens-overlay-XXXXXX` (mode 0700) and remove it at the latest when the process ends. */
export async function makePrivateDir(parent: string): Promise<string> {
  let dir: string;
  try {
    dir = mkdtempSync(join(parent, PRIVATE_DIR_PREFIX));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reasons: Record<string, string> = {
      ENOENT: 'no such directory',
      ENOTDIR: 'not a directory',
      EACCES: 'permission denied',
      EPERM: 'operation not permitted',
      EROFS: 'read-only file system',
      ENOSPC: 'no space left on device',
      EDQUOT: 'disk quota exceeded',
    };
    throw new TempDirError(parent, reasons[e.code ?? ''] ?? e.message);
  }
  live.add(dir);
  install();
  return dir;
}

/**
 * Remove a private directory now. Safe to call twice, and after a signal
 * already removed it. Synchronous: one small file and a directory.
 */
export async function removePrivateDir(dir: string): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  release(dir);
}

/** Stop tracking a directory without removing it: its owner keeps it beyond this process. */
export function release(dir: string): void {
  live.delete(dir);
  if (live.size === 0) uninstall();
}

/** How many private directories this process still owns (for tests and diagnostics). */
export function livePrivateDirs(): string[] {
  return [...live];
}
