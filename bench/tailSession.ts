/**
 * A follower measured against a live guest, for bench/tail.bench.ts and
 * scripts/soak-tail.ts: the live guest of the tests (qemu-storage-daemon
 * holding a qcow2, exported through FUSE, mounted by the kernel) with a
 * big log, a writer that appends numbered lines and fsyncs them, and a
 * follower (guestlens tail -f, or virt-tail) whose stdout is timed line by
 * line. Lines are "seq=N"; lost and doubled ones are counted, latency is
 * from the writer's fsync to the line on the follower's stdout.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { startLiveGuest, type LiveGuest } from '../test/support/liveGuest.ts';
import { startTracked, stop, type Tracked } from '../test/support/processes.ts';

export const repo = join(import.meta.dirname, '..');
export const GUESTLENS = join(repo, 'cli', 'bin', 'guestlens');
const TICKS_PER_SECOND = 100; // USER_HZ on Linux

export interface FollowerOptions {
  /** guestlens tail -f (default) or virt-tail. */
  tool?: 'guestlens' | 'virt-tail';
  intervalS?: number;
}

export class TailSession {
  private fd: number;
  private next = 1;
  private readonly syncedAt = new Map<number, number>();
  private readonly seenAt = new Map<number, number>();
  duplicates = 0;
  outOfOrder = 0;
  private lastSeen = 0;
  private follower: Tracked | undefined;
  private ready = false;
  /** Lines that are neither ours nor the old ones: torn or garbled (the first few kept). */
  readonly garbled: string[] = [];
  stderr = '';

  private constructor(
    readonly live: LiveGuest,
    readonly logPath: string,
  ) {
    this.fd = openSync(logPath, 'a');
  }

  /** A live guest whose /var/log/app.log already holds `logMiB` of old lines (written through the kernel, synced). */
  static async create(dir: string, logMiB: number): Promise<TailSession> {
    const live = await startLiveGuest(dir, { sizeMiB: Math.max(256, logMiB + 256) });
    const logDir = join(live.mnt, 'var', 'log');
    mkdirSync(logDir, { recursive: true });
    const logPath = join(logDir, 'app.log');
    if (logMiB > 0) {
      // Old lines that do not parse as seq=N: the follower starts at the end and must not print them.
      execFileSync('sh', ['-c', `yes 'an old line of the log, written before the follower started, padded to look real' | head -c ${logMiB * 1024 * 1024} > ${logPath}`]);
    }
    await live.sync();
    return new TailSession(live, logPath);
  }

  /** Start the follower and wait until it has read the end of the log (it prints the last line, "ready"). */
  async startFollowerReady(o: FollowerOptions = {}, timeoutMs = 300000): Promise<void> {
    // After a newline: the old lines may end in the middle of one.
    writeSync(this.fd, '\nready\n');
    fsyncSync(this.fd);
    await this.live.sync();
    this.startFollower(o);
    const end = Date.now() + timeoutMs;
    while (!this.ready) {
      if (Date.now() > end) throw new Error(`the follower did not start within ${timeoutMs} ms: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Start the follower at the end of the log. */
  startFollower(o: FollowerOptions = {}): void {
    const interval = String(o.intervalS ?? 1);
    this.follower =
      o.tool === 'virt-tail'
        ? startTracked('virt-tail', ['-a', this.live.image, '-m', '/dev/sda', '/var/log/app.log'], {
            env: { ...process.env, LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' } as Record<string, string>,
          })
        : startTracked(GUESTLENS, ['tail', '-f', '-n', '1', '--interval', interval, this.live.image, '/var/log/app.log']);
    let buffered = '';
    this.follower.stdout!.on('data', (d: Buffer) => {
      const now = Date.now();
      buffered += d.toString('latin1');
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const l of lines) {
        if (l === 'ready') this.ready = true;
        const m = /^seq=(\d+) x*$/.exec(l);
        if (!m) {
          if (l !== 'ready' && !l.startsWith('an old line')) this.garbled.push(`${JSON.stringify(l.slice(0, 60))} (${l.length} bytes) after seq=${this.lastSeen}`);
          continue;
        }
        const n = Number(m[1]);
        if (this.seenAt.has(n)) this.duplicates++;
        else this.seenAt.set(n, now);
        if (n < this.lastSeen) this.outOfOrder++;
        this.lastSeen = Math.max(this.lastSeen, n);
      }
    });
    this.follower.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-20000)));
  }

  get pid(): number {
    return this.follower!.pid;
  }

  /** Append `n` lines (each `pad` bytes long or so) and, unless told not to, fsync them. */
  write(n: number, options: { pad?: number; sync?: boolean } = {}): void {
    let text = '';
    const first = this.next;
    for (let i = 0; i < n; i++) text += `seq=${this.next++} ${'x'.repeat(options.pad ?? 40)}\n`;
    writeSync(this.fd, text);
    if (options.sync ?? true) {
      fsyncSync(this.fd);
      const at = Date.now();
      for (let k = first; k < this.next; k++) this.syncedAt.set(k, at);
    }
  }

  async sync(): Promise<void> {
    fsyncSync(this.fd);
    await this.live.sync();
    const at = Date.now();
    for (let k = 1; k < this.next; k++) if (!this.syncedAt.has(k)) this.syncedAt.set(k, at);
  }

  get written(): number {
    return this.next - 1;
  }

  get received(): number {
    return this.seenAt.size;
  }

  /** Wait until every written line arrived, or `timeoutMs` passed. */
  async waitForAll(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.received >= this.written) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return this.received >= this.written;
  }

  /** Latencies (ms) of the lines that were fsynced and arrived, sorted. */
  latencies(): number[] {
    const out: number[] = [];
    for (const [n, at] of this.syncedAt) {
      const seen = this.seenAt.get(n);
      if (seen !== undefined) out.push(Math.max(0, seen - at));
    }
    return out.sort((a, b) => a - b);
  }

  lost(): number {
    return this.lostRanges().reduce((n, [a, b]) => n + b - a + 1, 0);
  }

  /** The lines never printed, as [first, last] ranges (to find them in the log). */
  lostRanges(): [number, number][] {
    const out: [number, number][] = [];
    for (let k = 1; k <= this.written; k++) {
      if (this.seenAt.has(k)) continue;
      const last = out.at(-1);
      if (last && last[1] === k - 1) last[1] = k;
      else out.push([k, k]);
    }
    return out;
  }

  /**
   * CPU time (seconds, user + system) of the follower and every process
   * below it, the living and the reaped (virt-tail's appliance is a child
   * QEMU, relaunched each poll), and the follower's own resident memory, MiB.
   */
  usage(): { cpuS: number; rssMiB: number } {
    const procs = new Map<number, { ppid: number; ticks: number }>();
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        // After "pid (comm) ": state ppid ... utime(14) stime(15) cutime(16) cstime(17) of stat(5).
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        procs.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) });
      } catch {
        // Gone meanwhile.
      }
    }
    let ticks = 0;
    const todo = [this.pid];
    while (todo.length) {
      const p = todo.pop()!;
      const info = procs.get(p);
      if (!info) continue;
      ticks += info.ticks;
      for (const [child, c] of procs) if (c.ppid === p) todo.push(child);
    }
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
    return { cpuS: ticks / TICKS_PER_SECOND, rssMiB: rss ? Number(rss[1]) / 1024 : 0 };
  }

  async close(): Promise<void> {
    closeSync(this.fd);
    if (this.follower) await stop(this.follower);
    await this.live.stop();
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}
