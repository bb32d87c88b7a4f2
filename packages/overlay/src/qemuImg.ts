/**
 * Running qemu-img: always through execa with an argument array (no shell),
 * never letting it guess a format (every call names one with -f/-F).
 */
import { execa } from 'execa';
import { OverlayError, QemuImgError, QemuImgMissingError, QemuImgTooOldError } from './errors.ts';

export const QEMU_IMG = 'qemu-img';

/** The file driver's `locking` option, which the overlay's backing reference needs, arrived in QEMU 2.10. */
const MIN_VERSION: [number, number] = [2, 10];

export interface QemuImgResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** How a program is run: its exit code (undefined when it could not be started, with the errno code), stdout, stderr. */
export type CommandRunner = (file: string, args: string[], env: Record<string, string>) => Promise<{ exitCode: number | undefined; code?: string; message?: string; stdout: string; stderr: string }>;

let runner: CommandRunner | undefined;

/**
 * Run qemu-img through `r` instead of starting it from this process (the
 * exporter's spawner: see cli/src/exporter/spawner.ts); undefined restores
 * the default.
 */
export function useCommandRunner(r: CommandRunner | undefined): void {
  runner = r;
}

/** Run qemu-img; a missing binary becomes QemuImgMissingError, anything else is returned for the caller to judge. */
export async function runQemuImg(args: string[]): Promise<QemuImgResult> {
  if (runner) {
    const r = await runner(QEMU_IMG, args, { LC_ALL: 'C' });
    if (r.exitCode === undefined) {
      if (r.code === 'ENOENT') throw new QemuImgMissingError(QEMU_IMG);
      throw new OverlayError(`could not run ${QEMU_IMG}: ${r.message ?? r.code ?? 'unknown error'}`);
    }
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  }
  const r = await execa(QEMU_IMG, args, { reject: false, stdin: 'ignore', env: { LC_ALL: 'C' } });
  if (r.failed && r.exitCode === undefined) {
    if (r.code === 'ENOENT') throw new QemuImgMissingError(QEMU_IMG);
    throw new OverlayError(`could not run ${QEMU_IMG}: ${r.shortMessage}`);
  }
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

// One version check per PATH: the answer cannot change while PATH does not.
const versionChecks = new Map<string, Promise<string>>();

/**
 * Make sure qemu-img exists and knows `locking`; returns its version. Cached
 * per PATH value, so repeated overlays pay for it once.
 */
export function ensureQemuImg(): Promise<string> {
  const key = process.env.PATH ?? '';
  let check = versionChecks.get(key);
  if (!check) {
    check = checkVersion();
    versionChecks.set(key, check);
    // A failed check (qemu-img missing) is not cached: the user may install it and retry.
    check.catch(() => versionChecks.delete(key));
  }
  return check;
}

async function checkVersion(): Promise<string> {
  const r = await runQemuImg(['--version']);
  const m = /version\s+(\d+)\.(\d+)(?:\.(\d+))?/.exec(r.stdout);
  if (r.exitCode !== 0 || !m) {
    throw new OverlayError(`could not tell which qemu-img this is ("${QEMU_IMG} --version" said: ${(r.stdout + r.stderr).trim().slice(0, 200) || 'nothing'}); install Debian's qemu-utils`);
  }
  const version = m[3] === undefined ? `${m[1]}.${m[2]}` : `${m[1]}.${m[2]}.${m[3]}`;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major < MIN_VERSION[0] || (major === MIN_VERSION[0] && minor < MIN_VERSION[1])) throw new QemuImgTooOldError(version);
  return version;
}

/**
 * `qemu-img info -U` of one image: opens that file only (no backing file),
 * takes no lock. `format` is always given, except to learn what QEMU itself
 * will make of a backing file whose image records no format.
 */
export async function qemuImgInfo(path: string, format: string | undefined): Promise<Record<string, unknown>> {
  const formatArgs = format === undefined ? [] : ['-f', format];
  const r = await runQemuImg(['info', '-U', ...formatArgs, '--output=json', path]);
  if (r.exitCode !== 0) throw new QemuImgError(`qemu-img info${format === undefined ? '' : ` -f ${format}`}`, path, r.stderr);
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    throw new QemuImgError('qemu-img info --output=json', path, `its output is not JSON: ${r.stdout.slice(0, 200)}`);
  }
}
