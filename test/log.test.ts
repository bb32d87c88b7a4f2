/**
 * guestlens log against journalctl: a guest disk whose /var/log/journal
 * holds files systemd's own writer made (an archived system file, the active
 * one, a user's), read from the image and printed in journalctl's modes with
 * its filters; journalctl --file on the same files is the oracle. Then -f on
 * a qcow2 that qemu-storage-daemon holds while systemd-journal-remote writes
 * the journal inside the guest filesystem (kernel-mounted through a FUSE
 * export), and the /var/log/messages fallback of a guest with no journal.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { JOURNAL_REMOTE, exportEntry, haveJournalTools, variedEntries, writeJournal, writerEnv, type ExportEntry } from '../packages/journal/test/support/fixtures.ts';
import { journalctl } from '../packages/journal/test/support/oracle.ts';
import { guardImages } from './support/imageGuard.ts';
import { loopMountUnavailable } from './support/kernel.ts';
import { startTracked, stop, waitFor, type Tracked } from './support/processes.ts';
import { startLiveGuest, type LiveGuest } from './support/liveGuest.ts';
import { guestlens, sh } from './support/run.ts';
import { scratchDir } from './support/scratch.ts';

const MACHINE = '5e1f0c2a9b8d4e6f8a7b6c5d4e3f2a1b';
const ENV = { TZ: 'UTC', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };

describe('log: a guest\'s systemd journal, as journalctl prints it', function () {
  this.timeout(300000);
  const missing = haveJournalTools();
  let root: string;
  let image: string;
  let files: string[];

  before(async function () {
    if (missing) {
      console.log(`      cannot run the log tests: ${missing}`);
      this.skip();
    }
    const dir = scratchDir('log');
    root = join(dir, 'root');
    const jdir = join(root, 'var', 'log', 'journal', MACHINE);
    mkdirSync(jdir, { recursive: true });
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc', 'machine-id'), `${MACHINE}\n`);
    const entries = variedEntries(240);
    // An archived file (rotated by journald), the active one and a user's: journalctl interleaves them by time.
    files = [
      join(jdir, 'system@00000000000000000000000000000001-0000000000000001-0005f1e2d3c4b5a6.journal'),
      join(jdir, 'system.journal'),
      join(jdir, 'user-1000.journal'),
    ];
    await writeJournal(files[0], entries.filter((_, i) => i < 100 && i % 5 !== 4));
    await writeJournal(files[1], entries.filter((_, i) => i >= 100 && i % 5 !== 4));
    await writeJournal(files[2], entries.filter((_, i) => i % 5 === 4), { compact: true });
    const raw = join(dir, 'guest.raw');
    await sh('truncate', ['-s', '64M', raw]);
    await sh('mkfs.ext4', ['-q', '-F', '-d', root, raw]);
    image = join(dir, 'guest.qcow2');
    await sh('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, image]);
  });

  const cases: [string, string[]][] = [
    ['short', []],
    ['short-iso', ['-o', 'short-iso']],
    ['short-precise', ['-o', 'short-precise']],
    ['short-monotonic', ['-o', 'short-monotonic']],
    ['json', ['-o', 'json']],
    ['export', ['-o', 'export']],
    ['cat', ['-o', 'cat']],
    ['the last 7 entries', ['-n', '7', '-o', 'short-iso']],
    ['one unit', ['-u', 'foo.service', '-o', 'short-iso']],
    ['a priority range', ['-p', 'err', '-o', 'short-iso']],
    ['the previous boot', ['-b', '-1', '-o', 'short-iso']],
    ['an identifier', ['-t', 'sshd', '-o', 'short-iso']],
    ['since and until', ['-S', '@1700000050', '-U', '@1700000150', '-o', 'short-iso']],
    ['a field match', ['_PID=101', '-o', 'short-iso']],
  ];
  for (const [what, args] of cases) {
    it(`${what}: byte for byte journalctl --file on the same files`, async () => {
      const oracle = await journalctl([...files.map((f) => `--file=${f}`), '--no-pager', ...args]);
      assert.equal(oracle.exitCode, 0, oracle.stderr);
      assert.ok(oracle.stdout.length > 0, 'journalctl printed nothing: the case tests nothing');
      const r = await guardImages([image], () => guestlens(['log', image, ...args], { env: ENV }));
      assert.equal(r.exitCode, 0, r.stderr);
      if (args.includes('json')) {
        // journalctl writes an entry's fields in its hash table's order: the same objects, compared as objects.
        const parse = (t: string) => t.split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown);
        assert.deepEqual(parse(r.stdout), parse(oracle.stdout.toString('utf8')));
      } else assert.equal(r.stdout, oracle.stdout.toString('utf8'));
    });
  }

  it('names bad input: a match that is not FIELD=VALUE is a usage error; a bad --since says so', async () => {
    const bad = await guestlens(['log', image, 'foo'], { env: ENV });
    assert.equal(bad.exitCode, 2);
    assert.match(bad.stderr, /FIELD=VALUE/);
    const since = await guestlens(['log', image, '-S', 'not a time'], { env: ENV });
    assert.equal(since.exitCode, 2, since.stderr);
    assert.match(since.stderr, /not a time/);
    assert.doesNotMatch(bad.stderr + since.stderr, /\n\s+at /, 'no stack trace');
  });

  it('a guest with no journal: /var/log/messages, said on stderr; with neither, an error naming both', async () => {
    const dir = scratchDir('log-text');
    const tree = join(dir, 'root');
    mkdirSync(join(tree, 'var', 'log'), { recursive: true });
    const lines = Array.from({ length: 50 }, (_, i) => `Dec  1 10:00:${String(i).padStart(2, '0')} host app[1]: line ${i}`);
    writeFileSync(join(tree, 'var', 'log', 'messages'), `${lines.join('\n')}\n`);
    const raw = join(dir, 'text.raw');
    await sh('truncate', ['-s', '16M', raw]);
    await sh('mkfs.ext4', ['-q', '-F', '-d', tree, raw]);
    const r = await guestlens(['log', '--format', 'raw', raw, '-n', '3'], { env: ENV });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, `${lines.slice(-3).join('\n')}\n`);
    assert.match(r.stderr, /no systemd journal.*\/var\/log\/messages/);
    const empty = join(dir, 'empty.raw');
    await sh('truncate', ['-s', '16M', empty]);
    await sh('mkfs.ext4', ['-q', '-F', empty]);
    const none = await guestlens(['log', '--format', 'raw', empty], { env: ENV });
    assert.equal(none.exitCode, 1);
    assert.match(none.stderr, /no systemd journal .*\/var\/log\/journal.*\/var\/log\/messages or \/var\/log\/syslog/);
  });
});

describe('log -f: following the journal of a guest whose disk QEMU is writing', function () {
  this.timeout(300000);
  const missing = haveJournalTools();
  let live: LiveGuest | undefined;
  let writer: Tracked | undefined;
  let follower: Tracked | undefined;

  before(async function () {
    const why = missing ?? (await loopMountUnavailable());
    if (why) {
      console.log(`      cannot run the follow test: ${why}`);
      this.skip();
    }
  });

  after(async () => {
    if (follower) await stop(follower);
    if (writer) await stop(writer);
    await live?.stop();
  });

  it('prints every entry once, in order, as journald-remote appends them and the kernel syncs them to the qcow2', async () => {
    live = await startLiveGuest(scratchDir('log-follow'));
    const { image, mnt } = live;
    const jdir = join(mnt, 'var', 'log', 'journal', MACHINE);
    mkdirSync(jdir, { recursive: true });
    const journalPath = join(jdir, 'system.journal');
    writer = startTracked(JOURNAL_REMOTE, [`--output=${journalPath}`, '-'], { input: true, env: { ...process.env, ...writerEnv() } as Record<string, string> });
    const stdin = writer.stdin!;
    const TOTAL = 300;
    let written = 0;
    const entry = (i: number): ExportEntry => ({
      realtime: 1750000000000000n + BigInt(i) * 1000n,
      monotonic: BigInt(1000 + i),
      bootId: '0123456789abcdef0123456789abcdef',
      fields: [['SYSLOG_IDENTIFIER', 'app'], ['MESSAGE', `live ${i}`]],
    });
    const feed = async (n: number) => {
      const parts: Buffer[] = [];
      for (let k = 0; k < n && written < TOTAL; k++) parts.push(exportEntry(entry(written++)));
      await new Promise<void>((r) => (stdin.write(Buffer.concat(parts)) ? r() : stdin.once('drain', () => r())));
      await waitFor('journal-remote to write', async () => (await execa('stat', ['-c', '%s', journalPath], { reject: false })).exitCode === 0);
      await sh('sync', ['-f', mnt]);
    };
    await feed(40);
    await new Promise((r) => setTimeout(r, 300));
    await sh('sync', ['-f', mnt]);

    follower = startTracked(join(process.cwd(), 'cli', 'bin', 'guestlens'), ['log', image, '-f', '-o', 'cat', '--interval', '0.2'], { env: { ...process.env, ...ENV } as Record<string, string> });
    let out = '';
    follower.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    let err = '';
    follower.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const count = () => out.split('\n').filter(Boolean).length;
    await waitFor('the first entries', () => count() >= 1, 30000);
    while (written < TOTAL) {
      await feed(20);
      await new Promise((r) => setTimeout(r, 150));
    }
    // journal-remote writes when it has read a whole entry; the kernel writes back what sync asks for.
    await waitFor(`all ${TOTAL} entries (got ${count()}; stderr: ${err})`, async () => {
      await sh('sync', ['-f', mnt]);
      return count() >= TOTAL;
    }, 60000, 300);
    await new Promise((r) => setTimeout(r, 1000));
    const got = out.split('\n').filter(Boolean);
    assert.deepEqual(got, Array.from({ length: TOTAL }, (_, i) => `live ${i}`), `stderr: ${err}`);
    assert.equal(follower.exitCode, null, 'still following');
  });
});
