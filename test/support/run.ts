/** Running real tools (qemu-img, mkfs.*, sfdisk, ...) and our own CLI from tests. */
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Run a tool; throw with its stderr when it fails. Returns stdout. */
export async function sh(file: string, args: string[], options: { input?: string | Buffer; cwd?: string; env?: Record<string, string> } = {}): Promise<string> {
  const r = await execa(file, args, { input: options.input, cwd: options.cwd, env: options.env, reject: false, stripFinalNewline: false });
  if (r.exitCode !== 0) {
    throw new Error(`${file} ${args.join(' ')} failed (exit ${r.exitCode}):\n${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Run `guestlens ARGS` exactly as a user would (the launcher, which runs the built CLI under node). */
export async function guestlens(args: string[], options: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const r = await execa(join(repoRoot, 'cli', 'bin', 'guestlens'), args, {
    reject: false,
    env: options.env,
    input: options.input,
    timeout: options.timeoutMs ?? 120000,
    stripFinalNewline: false,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/**
 * qemu-img making a LUKS header. QEMU times PBKDF2 on a new thread to choose
 * its iteration count, and Debian's 7.2 (with upstream commit c72cab5ad9)
 * fails with "Unable to get accurate CPU usage" when the first, short round
 * reads a CPU time of zero (getrusage is not updated yet; fixed upstream in
 * 2025). It happens at random, so this runs it again a few times: the image
 * is then made as asked.
 */
export async function shLuks(file: string, args: string[]): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await sh(file, args);
    } catch (err) {
      if (attempt >= 8 || !/Unable to get accurate CPU usage/.test((err as Error).message)) throw err;
    }
  }
}
