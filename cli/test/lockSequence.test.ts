/**
 * The protocol byte for byte: under strace, `guestlens lock` makes the same
 * fcntl calls, in the same order, with the same results, as the equivalent
 * qemu-io open and close — apply, check, roll back, release.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { startTracked, waitFor } from '../../test/support/processes.ts';
import { startHolder, type HolderKind } from '../../test/support/qemuHolders.ts';
import { guardImages } from '../../test/support/imageGuard.ts';
import { guestlens } from '../../test/support/run.ts';
import { scratchDir } from '../../test/support/scratch.ts';
import { makeImage, type Format } from '../../packages/locking/test/support/images.ts';
import { GUESTLENS_BIN } from '../../packages/locking/test/support/cli.ts';
import { holdForeignWriteLock } from '../../packages/locking/test/support/foreignLock.ts';

type Mode = 'rw' | 'ro' | 'force-share';
const QEMU_IO_FLAGS: Record<Mode, string[]> = { rw: [], ro: ['-r'], 'force-share': ['-r', '-U'] };
const LOCK_OPTIONS: Record<Format, Record<Mode, string[]>> = {
  qcow2: {
    rw: ['--perm', 'consistent read,write,resize', '--share', 'consistent read,write unchanged'],
    ro: [],
    'force-share': ['--perm', 'consistent read', '--share', 'all'],
  },
  raw: {
    rw: ['--perm', 'consistent read,write', '--share', 'all'],
    ro: ['--perm', 'consistent read', '--share', 'all'],
    'force-share': ['--perm', 'consistent read', '--share', 'all'],
  },
};

// For GETLK strace shows the struct as returned: on a conflict, the other lock's range (QEMU's neighbours merge: 100, len 2).
const CALL = /fcntl\(\d+, (F_OFD_SETLK|F_OFD_GETLK|F_SETLK|F_GETLK), \{l_type=(F_[A-Z]+), l_whence=SEEK_SET, l_start=(\d+), l_len=(\d+)[^}]*\}\)\s+= (0|-1 [A-Z]+)/;

/** Every lock call on QEMU's bytes, from all of a traced run's threads, e.g. "SETLK F_RDLCK 100 = 0", "GETLK F_RDLCK 100+2 = 0". */
async function traceLockCalls(file: string, args: string[]): Promise<{ calls: string[]; exitCode: number; stderr: string }> {
  const dir = scratchDir('strace');
  const r = await execa('strace', ['-ff', '-qq', '-e', 'trace=fcntl', '-o', join(dir, 'trace'), file, ...args], { reject: false, timeout: 120000 });
  const calls: string[] = [];
  for (const name of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      const m = CALL.exec(line);
      if (m && Number(m[3]) >= 100) calls.push(`${m[1].replace('F_OFD_', '').replace('F_', '')} ${m[2]} ${m[3]}${m[4] === '1' ? '' : `+${m[4]}`} = ${m[5]}`);
    }
  }
  return { calls, exitCode: r.exitCode ?? -1, stderr: String(r.stderr) };
}

describe('guestlens lock: the same fcntl calls as QEMU (strace)', function () {
  before(async function () {
    const probe = await execa('strace', ['-qq', '-e', 'trace=none', 'true'], { reject: false });
    if (probe.exitCode !== 0) {
      console.log(`    (skipped: strace does not work here: ${probe.stderr || probe.message})`);
      this.skip();
    }
    await guestlens(['--help']); // build the bundle outside the traces
  });

  async function compare(image: string, format: Format, mode: Mode): Promise<string[]> {
    const qemu = await traceLockCalls('qemu-io', [...QEMU_IO_FLAGS[mode], '-f', format, '-c', 'quit', image]);
    const ours = await guardImages([image], () => traceLockCalls(process.execPath, [GUESTLENS_BIN, 'lock', ...LOCK_OPTIONS[format][mode], image, '--', 'true']));
    assert.ok(qemu.calls.length > 0, `no lock calls traced from qemu-io: ${qemu.stderr}`);
    assert.deepEqual(ours.calls, qemu.calls);
    assert.equal(ours.exitCode === 0, qemu.exitCode === 0, `qemu-io exit ${qemu.exitCode}, guestlens exit ${ours.exitCode}: ${ours.stderr}`);
    return ours.calls;
  }

  for (const format of ['qcow2', 'raw'] as Format[]) {
    for (const mode of ['rw', 'ro', 'force-share'] as Mode[]) {
      it(`${format}, ${mode}, nobody else: apply, check, release`, async () => {
        const calls = await compare(await makeImage(format), format, mode);
        if (format === 'qcow2' && mode === 'ro') {
          assert.deepEqual(calls, [
            'SETLK F_RDLCK 100 = 0', 'SETLK F_RDLCK 201 = 0', 'SETLK F_RDLCK 203 = 0',
            'GETLK F_UNLCK 200 = 0', 'GETLK F_UNLCK 101 = 0', 'GETLK F_UNLCK 103 = 0',
            'SETLK F_UNLCK 100 = 0', 'SETLK F_UNLCK 201 = 0', 'SETLK F_UNLCK 203 = 0',
          ]);
        }
      });
    }
  }

  // (Raw openers through qemu-io share every permission, so only qcow2 openers meet a QEMU holder's refusal.)
  const conflicts: Array<[HolderKind, Mode, Format]> = [
    ['qemu-io -r', 'rw', 'qcow2'],
    ['qemu-io', 'ro', 'qcow2'],
    ['qemu-nbd --read-only', 'rw', 'qcow2'],
    ['qsd writable', 'rw', 'qcow2'],
  ];
  for (const [kind, mode, format] of conflicts) {
    it(`${format}, ${mode} against ${kind}: the check stops at the first conflict, then rolls back`, async () => {
      const image = await makeImage(format);
      await startHolder(kind, image, format);
      const calls = await compare(image, format, mode);
      assert.ok(calls.some((c) => /^GETLK F_RDLCK/.test(c)), 'a conflict was seen');
      assert.ok(calls.at(-1)!.startsWith('SETLK F_UNLCK'), 'rolled back');
    });
  }

  it('a write-locked byte: "Failed to lock byte 101" after locking 100, which is unlocked again', async () => {
    const image = await makeImage('raw');
    const py = await holdForeignWriteLock(image, 101, 1);
    const calls = await compare(image, 'raw', 'rw');
    assert.deepEqual(calls, ['SETLK F_RDLCK 100 = 0', 'SETLK F_RDLCK 101 = -1 EAGAIN', 'SETLK F_UNLCK 100 = 0']);
  });
});
