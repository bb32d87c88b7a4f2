/**
 * The robustness suite's engine: every image of a corpus through the real
 * CLI, each call a child process with a time budget and a memory budget,
 * classified as answered, clear error, crash (a signal, an unexpected exit
 * code, a stack trace on stderr), hang (the time budget ran out) or budget
 * overrun (peak RSS from GNU time). Where the kernel mounts an image
 * read-only (a copy: the kernel may replay the journal), our statfs must
 * equal its; where it refuses, we must not claim exact figures.
 * Used by scripts/robustness.ts (pnpm test:robustness, the whole corpus)
 * and test/robustness.test.ts (a bounded slice inside pnpm test).
 */
import { execa } from 'execa';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { copySparse } from './kernel.ts';
import { repoRoot } from './run.ts';

export const GUESTLENS = join(repoRoot, 'cli', 'bin', 'guestlens');

/** Where e2fsprogs's test images are: GUESTLENS_CORPUS, else ../shared/corpus beside the repository. */
export function corpusRoot(): string | undefined {
  const dir = process.env.GUESTLENS_CORPUS ?? join(repoRoot, '..', 'shared', 'corpus');
  return existsSync(join(dir, 'e2fsprogs')) ? dir : undefined;
}

export interface CorpusCase {
  name: string;
  /** The compressed file in the corpus. */
  source: string;
}

export function e2fsprogsCases(root: string): CorpusCase[] {
  const dir = join(root, 'e2fsprogs');
  const out: CorpusCase[] = [];
  for (const name of readdirSync(dir).sort()) {
    const file = readdirSync(join(dir, name)).find((f) => /^image\.(gz|bz2)$/.test(f));
    if (file) out.push({ name, source: join(dir, name, file) });
  }
  return out;
}

/** Decompress a case to `dir` (gzip in-process, bzip2 with the bzip2 tool). */
export async function unpack(c: CorpusCase, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `${c.name}.img`);
  if (c.source.endsWith('.gz')) await pipeline(createReadStream(c.source), createGunzip(), createWriteStream(out));
  else await execa('sh', ['-c', 'bzip2 -dc "$1" > "$2"', 'sh', c.source, out]);
  return out;
}

export type Outcome = 'answered' | 'clear error' | 'crash' | 'hang' | 'over budget';

export interface CallResult {
  outcome: Outcome;
  exitCode: number | undefined;
  peakMiB: number;
  stdout: string;
  stderr: string;
  why?: string;
}

export interface Budget {
  timeS: number;
  memoryMiB: number;
}

export const DEFAULT_BUDGET: Budget = { timeS: 20, memoryMiB: 512 };

/** A stack frame line, as Node prints them: what a user must never see. */
const STACK = /^\s+at .+(\(|:\d+:\d+)/m;

export async function runBudgeted(args: string[], budget: Budget = DEFAULT_BUDGET): Promise<CallResult> {
  const timeFile = join(process.env.TMPDIR ?? '/tmp', `gl-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const r = await execa('/usr/bin/time', ['-f', '%M', '-o', timeFile, GUESTLENS, ...args], { reject: false, timeout: budget.timeS * 1000, killSignal: 'SIGKILL', stripFinalNewline: false, maxBuffer: 256 << 20 });
  let peakMiB = 0;
  try {
    peakMiB = Number(readFileSync(timeFile, 'utf8').trim().split('\n').pop()) / 1024;
  } catch {
    // killed before GNU time wrote it
  }
  rmSync(timeFile, { force: true });
  const base = { exitCode: r.exitCode, peakMiB, stdout: String(r.stdout), stderr: String(r.stderr) };
  if (r.timedOut) return { ...base, outcome: 'hang', why: `no answer within ${budget.timeS} s` };
  if (peakMiB > budget.memoryMiB) return { ...base, outcome: 'over budget', why: `peak RSS ${peakMiB.toFixed(0)} MiB` };
  if (STACK.test(base.stderr)) return { ...base, outcome: 'crash', why: 'a stack trace on stderr' };
  // GNU time reports a child killed by a signal as "Command terminated by signal N" and exits 128+N.
  if (/Command terminated by signal|Command exited with non-zero status/.test(base.stderr) && ![1, 2, 3].includes(r.exitCode ?? -1)) return { ...base, outcome: 'crash', why: base.stderr.trim().split('\n').pop() };
  if (r.exitCode === 0) return { ...base, outcome: 'answered' };
  if (r.exitCode === 1 || r.exitCode === 3) return base.stderr.includes('guestlens') ? { ...base, outcome: 'clear error' } : { ...base, outcome: 'crash', why: `exit ${r.exitCode} without a message` };
  return { ...base, outcome: 'crash', why: `exit ${r.exitCode}` };
}

export interface KernelStatfs {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
}

/** The kernel's statfs of a read-only loop mount of a copy of `image`, or why it refused. */
export async function kernelStatfs(image: string, scratch: string): Promise<KernelStatfs | { refused: string }> {
  const copy = join(scratch, 'kernel-copy.img');
  const mnt = join(scratch, 'mnt');
  mkdirSync(mnt, { recursive: true });
  await copySparse(image, copy);
  // A read-write loop device under a read-only mount: the kernel replays the journal and
  // cleans up orphans onto the copy, as it would on the guest's disk (mount -o ro,loop would
  // make the loop device read-only, and the kernel then refuses to mount a journal that needs recovery).
  const loop = (await execa('losetup', ['--find', '--show', copy])).stdout.trim();
  try {
    await execa('dmesg', ['-C'], { reject: false });
    const m = await execa('mount', ['-o', 'ro', loop, mnt], { reject: false, timeout: 30000 });
    if (m.exitCode !== 0) {
      const dmesg = await execa('dmesg', [], { reject: false });
      const last = String(dmesg.stdout).trim().split('\n').filter((l) => /EXT[234]-fs|XFS|BTRFS/i.test(l) && l.includes(`${loop.replace('/dev/', '')})`) || l.includes(`device ${loop.replace('/dev/', '')}`)).map((l) => l.replace(/^\[[^\]]*\]\s*/, '')).join(' / ');
      return { refused: last || String(m.stderr).trim().split('\n')[0] };
    }
    try {
      const st = await execa('stat', ['-f', '-c', '%S %b %f %a %c %d', mnt], { reject: false });
      // A filesystem the kernel shut down right after mounting it (XFS on a corruption found at mount).
      if (st.exitCode !== 0) return { refused: `mounted, but statfs failed: ${String(st.stderr).trim()}` };
      const s = String(st.stdout).trim().split(' ').map(Number);
      return { bsize: s[0], blocks: s[1], bfree: s[2], bavail: s[3], files: s[4], ffree: s[5] };
    } finally {
      await execa('umount', [mnt], { reject: false });
    }
  } finally {
    await execa('losetup', ['-d', loop], { reject: false });
    rmSync(copy, { force: true });
  }
}

/**
 * What a call came to, for the table: answered with the kernel's statfs
 * (exact, equal); answered marked inexact with a reason; answered where
 * there is no kernel to compare with (FAT and NTFS here, image containers);
 * a clear error (where the kernel refuses too, or has no say); a refusal of
 * an image the kernel mounts; a crash, hang or budget overrun; a mismatch
 * (exact figures differing from the kernel's, or exact where it refuses).
 */
export type Klass =
  | 'exact = kernel'
  | 'inexact + reason'
  | 'answered, no oracle'
  | 'clear error'
  | 'refused, kernel mounts'
  | 'crash'
  | 'hang'
  | 'over budget'
  | 'mismatch';

export const KLASSES: Klass[] = ['exact = kernel', 'inexact + reason', 'answered, no oracle', 'clear error', 'refused, kernel mounts', 'crash', 'hang', 'over budget', 'mismatch'];

export interface CaseReport {
  name: string;
  command: string;
  result: CallResult;
  klass: Klass;
  /** The generated corpus's reader and technique (absent for the e2fsprogs corpus). */
  reader?: string;
  technique?: string;
  /** ok, or what is wrong beside the outcome: a statfs mismatch, exact figures where the kernel refuses. */
  kernel: string;
  failed: boolean;
}

interface DfRow {
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  exact: boolean;
  reason?: string;
}

/** One corpus image: df --json (against the kernel), then ls -lR of its root (answers or clear errors only). */
export async function checkImage(name: string, image: string, scratch: string, budget: Budget = DEFAULT_BUDGET, options: { ls?: boolean; noKernel?: string; format?: string } = {}): Promise<CaseReport[]> {
  const reports: CaseReport[] = [];
  const format = options.format ?? 'raw';
  const df = await runBudgeted(['df', '--json', '--format', format, image], budget);
  let kernel = 'not compared';
  let failed = !['answered', 'clear error'].includes(df.outcome);
  let klass: Klass = failed ? (df.outcome as Klass) : 'clear error';
  if (df.outcome === 'answered' || df.outcome === 'clear error') {
    const rows = (() => {
      try {
        return JSON.parse(df.stdout || '[]') as DfRow[];
      } catch {
        return undefined;
      }
    })();
    const row = rows?.[0];
    if (rows === undefined) {
      failed = true;
      klass = 'crash';
      kernel = 'df --json printed no JSON';
    } else if (options.noKernel) {
      kernel = `no kernel oracle: ${options.noKernel}`;
      klass = !row ? 'clear error' : row.exact ? 'answered, no oracle' : 'inexact + reason';
    } else {
      const k = await kernelStatfs(image, scratch);
      if ('refused' in k && /CONFIG_[A-Z0-9_]+|bad block size/.test(k.refused)) {
        // This host's kernel lacks what a guest's kernel has (a config option; pages as large as the
        // blocks, as on 64 KiB-page arm64): no oracle here.
        kernel = `not compared: this host's kernel cannot mount it (${/CONFIG_[A-Z0-9_]+|bad block size \d+/.exec(k.refused)![0]})`;
        klass = !row ? 'clear error' : row.exact ? 'answered, no oracle' : 'inexact + reason';
      } else if ('refused' in k) {
        if (row?.exact) {
          kernel = `the kernel refuses to mount it (${k.refused.slice(0, 160)}) but df says exact`;
          failed = true;
          klass = 'mismatch';
        } else {
          kernel = row ? `kernel refuses (${k.refused.slice(0, 100)}); ours marked inexact (${row.reason})` : `kernel refuses (${k.refused.slice(0, 100)}); ours refused too`;
          klass = row ? 'inexact + reason' : 'clear error';
        }
      } else if (!row) {
        kernel = 'the kernel mounts it; ours refused it (a clear error, not a number)';
        klass = 'refused, kernel mounts';
      } else {
        const mismatch = (['blocks', 'bfree', 'bavail', 'files', 'ffree'] as const).filter((f) => row[f] * row.bsize !== k[f] * k.bsize);
        if (mismatch.length === 0) {
          kernel = row.exact ? 'statfs equal' : `statfs equal (marked inexact: ${row.reason})`;
          klass = row.exact ? 'exact = kernel' : 'inexact + reason';
        } else if (!row.exact) {
          kernel = `statfs differs in ${mismatch.join(', ')}, marked inexact (${row.reason})`;
          klass = 'inexact + reason';
        } else {
          kernel = `statfs differs in ${mismatch.map((f) => `${f} ${row[f]} vs kernel ${k[f]}`).join(', ')}`;
          failed = true;
          klass = 'mismatch';
        }
      }
    }
  }
  reports.push({ name, command: 'df', result: df, kernel, failed, klass });
  if (options.ls === false) return reports;
  // A listing of a whole tree prints much more than df (130,000 lines for f_many_subdirs): three times the time.
  const ls = await runBudgeted(['ls', '-lR', '--format', format, '-m', '/dev/sda', image, '/'], { ...budget, timeS: budget.timeS * 3 });
  const lsFailed = !['answered', 'clear error'].includes(ls.outcome);
  reports.push({ name, command: 'ls -lR', result: ls, kernel: '', failed: lsFailed, klass: lsFailed ? (ls.outcome as Klass) : ls.outcome === 'answered' ? 'answered, no oracle' : 'clear error' });
  return reports;
}

export function summarize(reports: CaseReport[], options: { all?: boolean } = {}): string {
  const w = Math.max(34, ...reports.map((r) => r.name.length));
  const lines = [`${'case'.padEnd(w)} ${'command'.padEnd(8)} ${'outcome'.padEnd(12)} ${'RSS MiB'.padStart(8)}  kernel / why`];
  for (const r of reports) {
    if (options.all === false && !r.failed && r.klass !== 'refused, kernel mounts') continue;
    lines.push(`${r.name.padEnd(w)} ${r.command.padEnd(8)} ${r.result.outcome.padEnd(12)} ${r.result.peakMiB.toFixed(0).padStart(8)}  ${[r.kernel, r.result.why].filter(Boolean).join('; ')}${r.failed ? '  <-- FAIL' : ''}`);
  }
  const count = (o: Outcome) => reports.filter((r) => r.result.outcome === o).length;
  const images = new Set(reports.map((r) => r.name)).size;
  lines.push('', `${images} images, ${reports.length} calls: ${count('answered')} answered, ${count('clear error')} clear errors, ${count('crash')} crashes, ${count('hang')} hangs, ${count('over budget')} over budget; max RSS ${Math.max(0, ...reports.map((r) => r.result.peakMiB)).toFixed(0)} MiB; ${reports.filter((r) => r.failed).length} failed`);
  return lines.join('\n');
}

/** The table per reader (and command): how many calls of each class, max RSS, failures. */
export function summarizeByReader(reports: CaseReport[]): string {
  const groups = new Map<string, CaseReport[]>();
  for (const r of reports) {
    const key = `${r.reader ?? 'e2fsprogs'} ${r.command}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const cols = KLASSES.map((k) => Math.max(k.length, 5));
  const head = `${'reader command'.padEnd(18)} ${'images'.padStart(6)}  ${KLASSES.map((k, i) => k.padStart(cols[i])).join('  ')}  ${'maxRSS'.padStart(6)}  failed`;
  const lines = [head];
  const row = (label: string, rs: CaseReport[]) =>
    `${label.padEnd(18)} ${String(new Set(rs.map((r) => r.name)).size).padStart(6)}  ${KLASSES.map((k, i) => String(rs.filter((r) => r.klass === k).length).padStart(cols[i])).join('  ')}  ${Math.max(0, ...rs.map((r) => r.result.peakMiB)).toFixed(0).padStart(6)}  ${rs.filter((r) => r.failed).length}`;
  for (const [key, rs] of [...groups].sort()) lines.push(row(key, rs));
  lines.push(row('all', reports));
  return lines.join('\n');
}
