/** Running `guestlens lock` as a long-lived holder, and the CLI as an unprivileged user. */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { startTracked, waitFor, type Tracked } from '../../../../test/support/processes.ts';
import { guestlens, repoRoot, type CliResult } from '../../../../test/support/run.ts';

export const GUESTLENS_BIN = join(repoRoot, 'cli', 'bin', 'guestlens.mjs');

export interface LockHolderProcess {
  child: Tracked;
  pid: number;
  output(): string;
}

/**
 * `guestlens lock OPTIONS IMAGES -- sh -c 'echo locked; exec cat'`: the
 * command starts only once every lock is taken, so its "locked" line is the
 * readiness signal. cat reads the stdin pipe this test process holds, so even
 * a command orphaned by a failing test ends when the test run does.
 */
export async function startGuestlensLock(options: string[], images: string[], asUser?: string): Promise<LockHolderProcess> {
  const command = ['sh', '-c', 'echo locked; exec cat >/dev/null'];
  const child = asUser
    ? startTracked('setpriv', [...setprivArgs(asUser), process.execPath, GUESTLENS_BIN, 'lock', ...options, ...images, '--', ...command], { input: true })
    : startTracked(process.execPath, [GUESTLENS_BIN, 'lock', ...options, ...images, '--', ...command], { input: true });
  let text = '';
  child.stdout?.on('data', (c: Buffer) => (text += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (text += c.toString()));
  await waitFor('guestlens lock to take its locks', () => {
    if (child.exitCode !== null) throw new Error(`guestlens lock exited ${child.exitCode}:\n${text}`);
    return text.includes('locked');
  }, 60000);
  return { child, pid: child.pid, output: () => text };
}


function setprivArgs(user: string): string[] {
  const ids = user === 'nobody' ? ['65534', '65534'] : [user, user];
  return [`--reuid=${ids[0]}`, `--regid=${ids[1]}`, '--clear-groups'];
}

/**
 * Run the CLI as another user (root only). Builds the bundle first, as root, so
 * the other user's run finds it fresh (it could not write cli/.builds; it also
 * cannot write the code cache, and runs without one).
 */
export async function guestlensAs(user: string, args: string[]): Promise<CliResult> {
  await guestlens(['--help']);
  const r = await execa('setpriv', [...setprivArgs(user), process.execPath, GUESTLENS_BIN, ...args], { reject: false, stripFinalNewline: false, timeout: 60000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** A directory every user may enter (the run's scratch root is private to root); removed by `remove()`. */
export function worldReadableDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync('/tmp/gltest-world-');
  chmodSync(dir, 0o755);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function canSwitchUser(): boolean {
  return process.getuid?.() === 0;
}
