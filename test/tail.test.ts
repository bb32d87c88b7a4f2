/**
 * guestlens tail against a running guest made of real parts (support/
 * liveGuest.ts: qemu-storage-daemon holds the qcow2 and exports it through
 * FUSE, the kernel mounts it, a writer appends as a guest's programs do),
 * for 20 seconds (GUESTLENS_TAIL_SOAK_S; scripts/soak-tail.ts runs for
 * hours): plain appends with fsync, a burst of 10,000 lines,
 * lines longer than a block, a line split across two writes, appends left
 * to the kernel's writeback, a truncation, a rotation with unread lines in
 * the old file, a file that appears late. Every line exactly once and in
 * order, each change said once, the latency after an fsync measured. Then
 * the static cases: -n/-c/+K, several files with virt-tail's banners, bad
 * input, a /var of its own (LVM, -m), and virt-tail itself on one image.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { appendFileSync, closeSync, fsyncSync, mkdirSync, openSync, renameSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { guardImages } from './support/imageGuard.ts';
import { loopMountUnavailable } from './support/kernel.ts';
import { startLiveGuest, type LiveGuest } from './support/liveGuest.ts';
import { startTracked, stop, waitFor, type Tracked } from './support/processes.ts';
import { guestlens, repoRoot, sh } from './support/run.ts';
import { scratchDir } from './support/scratch.ts';
import { haveTool } from './support/guestDisk.ts';

const GUESTLENS = join(repoRoot, 'cli', 'bin', 'guestlens');
const INTERVAL_S = 0.5;
/** How long the writer runs in the suite; the long soak is scripts/soak-tail.ts. */
const SOAK_MS = Number(process.env.GUESTLENS_TAIL_SOAK_S ?? 20) * 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Record {
  path: string;
  line: string;
  inode: number;
  offset: number;
  partial?: boolean;
}

/** The writer: numbered lines "n=N ..." appended to one path, fsync when asked, the times of each fsync kept. */
class Writer {
  next = 1;
  private fd: number;
  readonly synced: { n: number; at: number }[] = [];
  constructor(readonly path: string) {
    this.fd = openSync(path, 'a');
  }
  line(pad = 0): string {
    return `n=${this.next++} ${'x'.repeat(pad)}\n`;
  }
  write(text: string): void {
    writeSync(this.fd, text);
  }
  sync(): void {
    fsyncSync(this.fd);
    this.synced.push({ n: this.next - 1, at: Date.now() });
  }
  reopen(): void {
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a');
  }
  close(): void {
    closeSync(this.fd);
  }
}

describe('tail -f: a guest log while the guest writes it (qemu-storage-daemon + FUSE + kernel mount)', function () {
  this.timeout(600000);
  let live: LiveGuest | undefined;
  let follower: Tracked | undefined;

  before(async function () {
    const why = await loopMountUnavailable();
    if (why) {
      console.log(`      cannot run the live tail test: ${why}`);
      this.skip();
    }
  });

  after(async () => {
    if (follower) await stop(follower);
    await live?.stop();
  });

  it('prints every line once and in order while a writer runs (20 s): appends, a 10k burst, long and split lines, writeback, truncation, rotation, a late file', async () => {
    live = await startLiveGuest(scratchDir('tail-live'), { sizeMiB: 256 });
    const logDir = join(live.mnt, 'var', 'log');
    mkdirSync(logDir, { recursive: true });
    const log = join(logDir, 'app.log');
    const writer = new Writer(log);
    for (let i = 0; i < 20; i++) writer.write(writer.line());
    writer.sync();
    await live.sync();

    const started = Date.now();
    follower = startTracked(GUESTLENS, ['tail', '-f', '--json', '--interval', String(INTERVAL_S), '-n', '5', live.image, '/var/log/app.log', '/var/log/late.log']);
    const received: { r: Record; at: number }[] = [];
    let buffered = '';
    follower.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      for (const p of parts) received.push({ r: JSON.parse(p) as Record, at: Date.now() });
    });
    let stderr = '';
    follower.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const appLines = () => received.filter((x) => x.r.path === '/var/log/app.log');
    const lastN = () => {
      const l = appLines().at(-1);
      return l ? Number(/^n=(\d+)/.exec(l.r.line)?.[1]) : 0;
    };
    const caughtUp = (what: string) => waitFor(`${what}: the follower at n=${writer.next - 1} (it is at ${lastN()}; stderr: ${stderr})`, async () => {
      await live!.sync();
      return lastN() === writer.next - 1;
    }, 60000, 200);
    await caughtUp('the first lines');

    // Plain appends, fsync after each few.
    for (let k = 0; k < 40; k++) {
      for (let i = 0; i < 5; i++) writer.write(writer.line(k * 3));
      writer.sync();
      await sleep(100);
    }
    // A burst of 10,000 lines in one write.
    let burst = '';
    for (let i = 0; i < 10000; i++) burst += writer.line(i % 50);
    writer.write(burst);
    writer.sync();
    // Lines longer than a block.
    for (let i = 0; i < 20; i++) writer.write(writer.line(5000 + i * 13));
    writer.sync();
    // A file that appears late.
    writeFileSync(join(logDir, 'late.log'), 'late 1\nlate 2\nlate 3\n');
    // A line split across two writes, the first half on disk before the second.
    for (let i = 0; i < 5; i++) {
      const l = writer.line(40);
      writer.write(l.slice(0, 17));
      writer.sync();
      await sleep(120);
      writer.write(l.slice(17));
      writer.sync();
      await sleep(300);
    }
    // Appends left to the kernel's writeback (no fsync), then some with.
    for (let k = 0; k < 20; k++) {
      for (let i = 0; i < 3; i++) writer.write(writer.line());
      await sleep(100);
    }
    await caughtUp('before the truncation');
    // Truncation (as logrotate's copytruncate does), then more lines.
    truncateSync(log, 0);
    for (let k = 0; k < 10; k++) {
      writer.write(writer.line());
      writer.sync();
      await sleep(100);
    }
    await caughtUp('after the truncation');
    // Rotation with lines the follower has not read yet in the old file.
    for (let i = 0; i < 50; i++) writer.write(writer.line());
    writer.sync();
    renameSync(log, `${log}.1`);
    writer.reopen();
    for (let i = 0; i < 50; i++) writer.write(writer.line());
    writer.sync();
    // Keep writing until the writer has run for SOAK_MS.
    while (Date.now() - started < SOAK_MS) {
      for (let i = 0; i < 5; i++) writer.write(writer.line(7));
      writer.sync();
      await sleep(250);
    }
    writer.close();
    await caughtUp('at the end');
    await sleep(INTERVAL_S * 3000);

    const lines = appLines();
    const numbers = lines.map((x) => Number(/^n=(\d+)/.exec(x.r.line)?.[1]));
    const expected = Array.from({ length: writer.next - 16 }, (_, i) => i + 16);
    assert.equal(numbers.length, expected.length, `lines printed ${numbers.length}, written since n=16 ${expected.length}`);
    assert.deepEqual(numbers, expected, 'every line once, in order');
    for (const x of lines) assert.match(x.r.line, /^n=\d+ x*$/, `a garbled line at offset ${x.r.offset}: ${x.r.line.slice(0, 80)}`);
    assert.ok(!lines.some((x) => x.r.partial), 'no line was given out as partial (the split halves came within two polls)');
    assert.ok(new Set(lines.map((x) => x.r.inode)).size === 2, 'the rotation moved to a new inode');
    const late = received.filter((x) => x.r.path === '/var/log/late.log').map((x) => x.r.line);
    assert.deepEqual(late, ['late 1', 'late 2', 'late 3']);
    assert.equal(stderr.match(/rotated/g)?.length, 1, stderr);
    assert.equal(stderr.match(/truncated/g)?.length, 1, stderr);
    assert.match(stderr, /late\.log: does not exist \(yet\); waiting for it/);
    assert.match(stderr, /late\.log: appeared/);
    assert.match(stderr, /the old file was read to its end/);

    // Latency from each fsync to its last line on our stdout.
    const seen = new Map<number, number>();
    for (const [i, n] of numbers.entries()) if (!seen.has(n)) seen.set(n, lines[i].at);
    const latencies = writer.synced.filter((s) => s.n >= 16 && seen.has(s.n)).map((s) => seen.get(s.n)! - s.at).sort((a, b) => a - b);
    const median = latencies[Math.floor(latencies.length / 2)];
    console.log(`      latency after fsync over ${latencies.length} syncs: median ${median} ms, p90 ${latencies[Math.floor(latencies.length * 0.9)]} ms, max ${latencies.at(-1)} ms (interval ${INTERVAL_S * 1000} ms)`);
    assert.ok(median <= 2 * INTERVAL_S * 1000, `median latency ${median} ms is over two intervals`);

    // SIGTERM: exit 0, the overlay removed (the run's root hook checks TMPDIR for it).
    await stop(follower);
    assert.equal(follower.exitCode, 0, stderr);
    follower = undefined;
  });
});

describe('tail: the last lines of guest files', function () {
  this.timeout(600000);
  let image: string;

  before(async () => {
    const dir = scratchDir('tail');
    const root = join(dir, 'root');
    mkdirSync(join(root, 'var', 'log'), { recursive: true });
    writeFileSync(join(root, 'var', 'log', 'app.log'), Array.from({ length: 100 }, (_, i) => `line ${i + 1}\n`).join(''));
    writeFileSync(join(root, 'var', 'log', 'partial.log'), 'one\ntwo\nno newline');
    writeFileSync(join(root, 'var', 'log', 'latin1.log'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    writeFileSync(join(root, 'var', 'log', 'escape.log'), 'red \x1b[31mRED\x1b[0m\n');
    mkdirSync(join(root, 'var', 'log', 'dir'));
    const raw = join(dir, 'data.raw');
    await sh('truncate', ['-s', '32M', raw]);
    await sh('mkfs.ext4', ['-q', '-F', '-d', root, raw]);
    image = join(dir, 'data.qcow2');
    await sh('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, image]);
  });

  it('-n, -c and +K as tail(1) counts them; a last line without newline printed as it is', async () => {
    await guardImages([image], async () => {
      const run = async (args: string[]) => {
        const r = await guestlens(['tail', image, ...args]);
        assert.equal(r.exitCode, 0, r.stderr);
        return r.stdout;
      };
      assert.equal(await run(['/var/log/app.log']), Array.from({ length: 10 }, (_, i) => `line ${i + 91}\n`).join(''));
      assert.equal(await run(['-n', '2', '/var/log/app.log']), 'line 99\nline 100\n');
      assert.equal(await run(['-n', '+99', '/var/log/app.log']), 'line 99\nline 100\n');
      assert.equal(await run(['-c', '10', '/var/log/app.log']), '\nline 100\n');
      assert.equal(await run(['-c', '+5', '/var/log/partial.log']), 'two\nno newline');
      assert.equal(await run(['-n', '2', '/var/log/partial.log']), 'two\nno newline');
      assert.equal(await run(['-n', '0', '/var/log/app.log']), '');
      // Bytes as they are in a pipe, escape sequences included (a terminal gets them escaped).
      assert.equal(await run(['/var/log/escape.log']), 'red \x1b[31mRED\x1b[0m\n');
    });
  });

  it('several files: virt-tail\'s banner before each switch, -q without; --json objects with inode and offset', async () => {
    const r = await guestlens(['tail', '-n', '1', image, '/var/log/app.log', '/var/log/partial.log']);
    assert.equal(r.stdout, '\n\n--- /var/log/app.log ---\n\nline 100\n\n\n--- /var/log/partial.log ---\n\nno newline');
    const q = await guestlens(['tail', '-q', '-n', '1', image, '/var/log/app.log', '/var/log/partial.log']);
    assert.equal(q.stdout, 'line 100\nno newline');
    const j = await guestlens(['tail', '--json', '-n', '1', image, '/var/log/app.log', '/var/log/latin1.log', '/var/log/partial.log']);
    assert.equal(j.exitCode, 0, j.stderr);
    const records = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record & { lineHex?: string });
    const stat = async (p: string) => (await guestlens(['stat', '--json', image, p])).stdout;
    const { ino } = (JSON.parse(await stat('/var/log/app.log')) as { ino: number }[])[0];
    assert.ok(ino > 0);
    assert.deepEqual(records[0], { path: '/var/log/app.log', line: 'line 100', inode: ino, offset: 783 });
    assert.equal(records[1].lineHex, '636166e9', 'bytes that are not UTF-8 are given in hex too');
    assert.equal(records[2].partial, true);
  });

  it('names bad input: a missing file (exit 1, or 3 with others printed), a directory, no path, a bad -n', async () => {
    const missing = await guestlens(['tail', image, '/var/log/nope.log']);
    assert.equal(missing.exitCode, 1);
    assert.match(missing.stderr, /data\.qcow2: .*\/var\/log\/nope\.log: no such file or directory/);
    const some = await guestlens(['tail', '-n', '1', image, '/var/log/nope.log', '/var/log/app.log']);
    assert.equal(some.exitCode, 3);
    assert.equal(some.stdout.endsWith('line 100\n'), true);
    const dir = await guestlens(['tail', image, '/var/log/dir']);
    assert.equal(dir.exitCode, 1);
    assert.match(dir.stderr, /\/var\/log\/dir: is a directory/);
    const none = await guestlens(['tail', image]);
    assert.equal(none.exitCode, 2);
    assert.match(none.stderr, /name the files/);
    const bad = await guestlens(['tail', '-n', 'ten', image, '/var/log/app.log']);
    assert.equal(bad.exitCode, 2);
    assert.match(bad.stderr, /-n ten/);
    const interval = await guestlens(['tail', '-f', '--interval', '0', image, '/var/log/app.log']);
    assert.equal(interval.exitCode, 2);
    for (const r of [missing, some, dir, none, bad, interval]) assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  it('-f stops when --pid\'s process exits, and when the image is deleted (exit 1, saying so)', async () => {
    const sleeper = startTracked('sleep', ['2']);
    const r = await guestlens(['tail', '-f', '--interval', '0.2', '--pid', String(sleeper.pid), image, '/var/log/app.log', '-n', '1'], { timeoutMs: 30000 });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, 'line 100\n');
    const copy = join(scratchDir('tail-deleted'), 'copy.qcow2');
    await sh('cp', [image, copy]);
    const f = startTracked(GUESTLENS, ['tail', '-f', '--interval', '0.2', copy, '/var/log/app.log', '-n', '1']);
    let out = '';
    f.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('the first line', () => out === 'line 100\n', 30000);
    await sh('rm', [copy]);
    const done = await f;
    assert.equal(done.exitCode, 1);
    assert.match(String(done.stderr), /copy\.qcow2: the image was deleted/);
  });
});

describe('tail: /var on its own logical volume, mounted with -m', function () {
  this.timeout(600000);

  it('reads /var/log/syslog on the LV given as /var, through the mount map', async function () {
    const { lvmUnavailable } = await import('./support/lvm.ts');
    const why = await lvmUnavailable();
    if (why) {
      console.log(`      cannot run: ${why}`);
      this.skip();
    }
    const { buildLvmGuest } = await import('./support/lvmGuest.ts');
    const g = await buildLvmGuest({ raid1: false, files: { 'etc/hostname': 'root\n', 'var/README': 'the mount point\n', 'log/syslog': 'var line 1\nvar line 2\n' } });
    const r = await guestlens(['tail', '--format', 'raw', '-a', g.first.raw, '-a', g.second, '-m', '/dev/guestvg/linear', '-m', '/dev/guestvg/striped:/var', '-n', '1', '/var/log/syslog']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, 'var line 2\n');
  });
});

describe('tail: output as Debian\'s virt-tail prints it, for plain appends', function () {
  this.timeout(600000);

  it('the same lines as virt-tail -m /dev/sda on one image', async function () {
    if (!(await haveTool('virt-tail'))) {
      console.log('      cannot compare: virt-tail is missing (Debian package guestfs-tools)');
      this.skip();
    }
    const dir = scratchDir('tail-virt');
    const root = join(dir, 'root');
    mkdirSync(root);
    writeFileSync(join(root, 'app.log'), Array.from({ length: 30 }, (_, i) => `entry ${i}\n`).join(''));
    appendFileSync(join(root, 'other.log'), 'other 1\nother 2\n');
    const raw = join(dir, 'v.raw');
    await sh('truncate', ['-s', '32M', raw]);
    await sh('mkfs.ext4', ['-q', '-F', '-d', root, raw]);
    // virt-tail's first poll prints a file that grew by up to 10,000 bytes whole (it starts from an empty file): -n +1.
    const ours = await guestlens(['tail', '-n', '+1', '--format', 'raw', raw, '/app.log', '/other.log']);
    assert.equal(ours.exitCode, 0, ours.stderr);
    // virt-tail never ends by itself while its files exist: its first poll is what it prints at once. Stop it
    // once it has printed as much as we did and then 3 s more (its next poll), not after a fixed 90 s.
    const child = execa('timeout', ['150', 'virt-tail', '--format=raw', '-a', raw, '-m', '/dev/sda', '/app.log', '/other.log'], {
      reject: false,
      stripFinalNewline: false,
      env: { ...process.env, LIBGUESTFS_BACKEND: 'direct', LIBGUESTFS_BACKEND_SETTINGS: 'force_tcg' },
    });
    let printed = '';
    child.stdout?.on('data', (c: Buffer) => (printed += c.toString()));
    const ended = child.then(() => true);
    const deadline = Date.now() + 150000;
    while (Buffer.byteLength(printed) < Buffer.byteLength(ours.stdout) && Date.now() < deadline && !(await Promise.race([ended, sleep(200).then(() => false)]))) {
      /* waiting for virt-tail's first poll */
    }
    await sleep(3000);
    child.kill('SIGTERM');
    const virt = await child;
    assert.ok(virt.stdout.length > 0, `virt-tail printed nothing (exit ${virt.exitCode}): ${virt.stderr}`);
    assert.equal(ours.stdout, virt.stdout);
  });
});
