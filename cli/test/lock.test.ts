import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { guardImages } from '../../test/support/imageGuard.ts';
import { startTracked, stop, waitFor } from '../../test/support/processes.ts';
import { startHolder, type HolderKind } from '../../test/support/qemuHolders.ts';
import { guestlens } from '../../test/support/run.ts';
import { scratchDir } from '../../test/support/scratch.ts';
import { makeImage, type Format } from '../../packages/locking/test/support/images.ts';
import { canSwitchUser, GUESTLENS_BIN, startGuestlensLock, worldReadableDir } from '../../packages/locking/test/support/cli.ts';
import { tool, type OpenerMode, type ToolResult } from '../../packages/locking/test/support/openers.ts';

function procLocksOn(image: string): string[] {
  const ino = statSync(image).ino;
  return readFileSync('/proc/locks', 'utf8').split('\n').filter((l) => l.includes(`:${ino} `));
}

/** The short-lived QEMU tools whose outcome must not tell a QEMU holder from ours. */
async function runOpeners(image: string, format: Format): Promise<Record<string, ToolResult>> {
  const openers: Record<string, [string, string[]]> = {
    'qemu-img info': ['qemu-img', ['info', '-f', format, image]],
    'qemu-img info -U': ['qemu-img', ['info', '-U', '-f', format, image]],
    'qemu-io': ['qemu-io', ['-f', format, '-c', 'quit', image]],
    'qemu-io -r': ['qemu-io', ['-r', '-f', format, '-c', 'quit', image]],
    'qemu-io -r -U': ['qemu-io', ['-r', '-U', '-f', format, '-c', 'quit', image]],
  };
  const results: Record<string, ToolResult> = {};
  for (const [name, [file, args]] of Object.entries(openers)) results[name] = await tool(file, args);
  return results;
}

const QEMU_HOLDER: Record<OpenerMode, HolderKind> = { rw: 'qemu-io', ro: 'qemu-io -r', 'force-share': 'qemu-io -r -U' };

/** `guestlens lock` options equivalent to each qemu-io mode (the bytes of the spec's table). */
const LOCK_OPTIONS: Record<Format, Record<OpenerMode, string[]>> = {
  qcow2: {
    rw: ['--perm', 'consistent read,write,resize', '--share', 'consistent read,write unchanged'],
    ro: [], // the defaults
    'force-share': ['--perm', 'consistent read', '--share', 'all'],
  },
  raw: {
    rw: ['--perm', 'consistent read,write', '--share', 'all'],
    ro: ['--perm', 'consistent-read', '--share', 'all'],
    'force-share': ['--perm', 'CONSISTENT_READ', '--share', 'consistent read, write, write unchanged, resize'],
  },
};

const writeLock = (image: string) => `Failed to get "write" lock\nIs another process using the image [${image}]?\n`;
const sharedWriteLock = (image: string) => `Failed to get shared "write" lock\nIs another process using the image [${image}]?\n`;

describe('guestlens lock', () => {
  describe('QEMU tools cannot tell it from the equivalent QEMU holder', () => {
    for (const format of ['qcow2', 'raw'] as Format[]) {
      for (const mode of ['rw', 'ro', 'force-share'] as OpenerMode[]) {
        it(`${format}: guestlens lock ${LOCK_OPTIONS[format][mode].join(' ') || '(defaults)'} ≡ ${QEMU_HOLDER[mode]}`, async () => {
          const image = await makeImage(format);
          const qemu = await startHolder(QEMU_HOLDER[mode], image, format);
          const againstQemu = await runOpeners(image, format);
          await qemu.stop();
          const ours = await startGuestlensLock(LOCK_OPTIONS[format][mode], [image]);
          const againstUs = await guardImages([image], () => runOpeners(image, format));
          assert.deepEqual(againstUs, againstQemu);
          // iotest 153's expectations, so that "equal" cannot mean "both trivially open".
          const info = againstUs['qemu-img info'];
          const rw = againstUs['qemu-io'];
          if (format === 'qcow2' && mode === 'rw') {
            assert.equal(info.stderr, `qemu-img: Could not open '${image}': ${sharedWriteLock(image)}`);
            assert.equal(againstUs['qemu-io -r'].stderr, `qemu-io: can't open device ${image}: ${sharedWriteLock(image)}`);
          }
          if (format === 'qcow2' && mode !== 'force-share') assert.equal(rw.stderr, `qemu-io: can't open device ${image}: ${writeLock(image)}`);
          if (format === 'qcow2' && mode === 'ro') assert.equal(info.exitCode, 0);
          if (mode === 'force-share') assert.ok(Object.values(againstUs).every((r) => r.exitCode === 0));
          assert.equal(againstUs['qemu-img info -U'].exitCode, 0);
          await stop(ours.child);
          assert.equal(ours.child.exitCode, 143, 'SIGTERM forwarded: the command died of it, and guestlens exits 128+15');
          assert.deepEqual(procLocksOn(image), [], 'nothing of ours left in /proc/locks');
        });
      }
    }
  });

  it('keeps a VM from opening the image for write during a backup, then lets go', async () => {
    const image = await makeImage('qcow2');
    const backup = join(scratchDir('backup'), 'copy.qcow2');
    const ours = await startGuestlensLock([], [image]);
    // Tracked: should it wrongly start, it is stopped after the test like every other process.
    const vm = startTracked('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-S', '-drive', `file=${image},format=qcow2,if=none`]);
    await waitFor('the VM to give up', () => vm.exitCode !== null, 30000);
    assert.notEqual(vm.exitCode, 0);
    assert.equal((await vm).stderr, `qemu-system-x86_64: -drive file=${image},format=qcow2,if=none: ${writeLock(image).trimEnd()}`);
    await stop(ours.child);
    const r = await guardImages([image], () => guestlens(['lock', image, '--', 'cp', image, backup]));
    assert.deepEqual([r.exitCode, r.stderr], [0, '']);
    assert.equal(readFileSync(backup).equals(readFileSync(image)), true);
    assert.deepEqual(procLocksOn(image), []);
  });

  describe('the command\'s exit status, and release on every exit path', () => {
    it('passes the status and the output through', async () => {
      const image = await makeImage('raw');
      const r = await guardImages([image], () => guestlens(['lock', image, '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']));
      assert.deepEqual([r.exitCode, r.stdout, r.stderr], [7, 'out\n', 'err\n']);
      assert.deepEqual(procLocksOn(image), []);
    });

    it('the command runs while the locks are held (it sees them)', async () => {
      const image = await makeImage('qcow2');
      const r = await guestlens(['lock', image, '--', 'qemu-io', '-f', 'qcow2', '-c', 'quit', image]);
      assert.equal(r.exitCode, 1);
      assert.equal(r.stderr, `qemu-io: can't open device ${image}: ${writeLock(image)}`);
    });

    it('a command that is not found: 127; one that cannot run: 126', async () => {
      const image = await makeImage('raw');
      const missing = await guestlens(['lock', image, '--', 'no-such-command-xyz', '--flag']);
      assert.deepEqual([missing.exitCode, missing.stderr], [127, 'guestlens: no-such-command-xyz: command not found\n']);
      const notExec = await guestlens(['lock', image, '--', image]);
      assert.equal(notExec.exitCode, 126);
      assert.match(notExec.stderr, /^guestlens: .*: cannot run: .*EACCES/);
      assert.deepEqual(procLocksOn(image), []);
    });

    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      it(`${signal} to guestlens reaches the command; guestlens exits with its status and releases`, async () => {
        const image = await makeImage('qcow2');
        const marker = join(scratchDir('sig'), 'got-signal');
        const ours = await startGuestlensLockWith(image, `trap 'echo ${signal} > "${marker}"; exit 5' ${signal.slice(3)}; echo locked; i=0; while [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done`);
        assert.equal(procLocksOn(image).length, 3);
        process.kill(ours.pid, signal);
        await ours.child;
        assert.equal(ours.child.exitCode, 5);
        assert.equal(readFileSync(marker, 'utf8'), `${signal}\n`);
        assert.deepEqual(procLocksOn(image), []);
      });
    }

    it('a command killed by a signal: 128+N', async () => {
      const image = await makeImage('raw');
      const r = await guestlens(['lock', image, '--', 'sh', '-c', 'kill -KILL $$']);
      assert.equal(r.exitCode, 137);
      assert.deepEqual(procLocksOn(image), []);
    });
  });

  describe('when the locks cannot be taken', () => {
    it('fails with QEMU\'s text and the holder, and does not run the command', async () => {
      const image = await makeImage('qcow2');
      const vm = await startHolder('qemu-system', image, 'qcow2');
      const marker = join(scratchDir('nrun'), 'ran');
      const r = await guardImages([image], () => guestlens(['lock', image, '--', 'touch', marker]));
      assert.equal(r.exitCode, 1);
      assert.match(r.stderr, new RegExp(`^guestlens: ${escapeRegExp(sharedWriteLock(image))}Byte 101 is held by qemu-system-x86_64 \\(pid ${vm.pid}\\) \\[fd \\d+, OFD lock\\]\\.\\n$`));
      assert.equal(existsSync(marker), false);
      const w = await guestlens(['lock', '--perm', 'write', '--share', 'all', image, '--', 'touch', marker]);
      assert.match(w.stderr, new RegExp(`^guestlens: ${escapeRegExp(writeLock(image))}Byte 201 is held by qemu-system-x86_64 \\(pid ${vm.pid}\\)`));
      assert.equal(existsSync(marker), false);
      assert.equal(procLocksOn(image).length, 4, 'only the VM\'s locks (100-101 merged, 103, 201, 203)');
    });

    it('several images: one held by QEMU fails the whole command, the others are released', async () => {
      const free = await makeImage('raw', 'free.raw');
      const held = await makeImage('qcow2', 'held.qcow2');
      await startHolder('qemu-io', held, 'qcow2');
      const r = await guestlens(['lock', free, held, '--', 'true']);
      assert.equal(r.exitCode, 1);
      assert.match(r.stderr, /^guestlens: Failed to get shared "write" lock\n/);
      assert.deepEqual(procLocksOn(free), []);
    });

    it('missing image: exit 1, command not run', async () => {
      const missing = join(scratchDir('mi'), 'missing.qcow2');
      const r = await guestlens(['lock', missing, '--', 'echo', 'ran']);
      assert.deepEqual([r.exitCode, r.stdout, r.stderr], [1, '', `guestlens: ${missing}: no such file or directory\n`]);
    });
  });

  it('several images, the same one twice and through a symlink: each inode locked once', async () => {
    const a = await makeImage('qcow2', 'a.qcow2');
    const b = await makeImage('raw', 'b.raw');
    const link = join(scratchDir('l'), 'a-link');
    symlinkSync(a, link);
    const ours = await startGuestlensLock(['--perm', 'write', '--share', 'consistent read'], [a, b, a, link]);
    // perm write + refusing all but consistent read: 101, 201, 202, 203 (merged to 201-203)
    assert.deepEqual(procLocksOn(a).map((l) => l.trim().split(/\s+/).slice(-2).join('-')).sort(), ['101-101', '201-203']);
    assert.equal(procLocksOn(b).length, 2);
    const locks = await guestlens(['locks', link]);
    assert.equal(locks.stdout.split('\n')[0], `${link}: in use read-write by guestlens (pid ${ours.pid}): reading needs an overlay`);
    await stop(ours.child);
    assert.deepEqual([...procLocksOn(a), ...procLocksOn(b)], []);
  });

  describe('usage', () => {
    it('needs a command after --, known permission names', async () => {
      const image = await makeImage('raw');
      const none = await guestlens(['lock', image]);
      assert.equal(none.exitCode, 2);
      assert.match(none.stderr, /^guestlens: name the command to run after "--"/);
      const bad = await guestlens(['lock', '--perm', 'write,fly', image, '--', 'true']);
      assert.equal(bad.exitCode, 2);
      assert.equal(bad.stderr, 'guestlens: --perm: unknown permission "fly"; use a comma-separated list of consistent read, write, write unchanged, resize, or all, or none\n');
      const gone = await guestlens(['lock', '--share', 'change children', image, '--', 'true']);
      assert.equal(gone.exitCode, 2);
      assert.match(gone.stderr, /QEMU 7\.2 no longer has it/);
      const noImage = await guestlens(['lock', '--', 'true']);
      assert.equal(noImage.exitCode, 2);
    });

    it('--help documents the defaults', async () => {
      const r = await guestlens(['lock', '--help']);
      assert.equal(r.exitCode, 0);
      assert.match(r.stdout, /\[default: "consistent read"\]/);
      assert.match(r.stdout, /\[default: "consistent read,write unchanged"\]/);
      assert.match(r.stdout, /exactly as a read-only QEMU does/);
    });
  });

  it('an unprivileged user can lock an image it can only read, and QEMU honours it', async function () {
    if (!canSwitchUser()) {
      console.log('    (skipped: needs root to run the CLI as nobody)');
      this.skip();
    }
    const world = worldReadableDir();
    try {
      const image = join(world.dir, 'disk.qcow2');
      copyFileSync(await makeImage('qcow2'), image);
      chmodSync(image, 0o644);
      const ours = await startGuestlensLock([], [image], 'nobody');
      const rw = await guardImages([image], () => tool('qemu-io', ['-f', 'qcow2', '-c', 'quit', image]));
      assert.equal(rw.stderr, `qemu-io: can't open device ${image}: ${writeLock(image)}`);
      await stop(ours.child);
      assert.deepEqual(procLocksOn(image), []);
    } finally {
      world.remove();
    }
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function startGuestlensLockWith(image: string, script: string) {
  const child = startTracked(process.execPath, [GUESTLENS_BIN, 'lock', image, '--', 'sh', '-c', script], { input: true });
  let text = '';
  child.stdout?.on('data', (c: Buffer) => (text += c.toString()));
  await waitFor('the command to start', () => text.includes('locked'), 60000);
  return { child, pid: child.pid };
}

