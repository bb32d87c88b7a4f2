/**
 * The promises of SECURITY.md that hold for every command, tested on every
 * read command: the guest image is never opened for writing by guestlens or
 * any program it starts (strace -f of every open), never changes (hash and
 * mtime), and nobody needs root to read an image they may read (the
 * commands run as `nobody` through setpriv on a world-readable image).
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { chmodSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { buildDisk, haveTool, toQcow2 } from './support/guestDisk.ts';
import { guardImages } from './support/imageGuard.ts';
import { repoRoot } from './support/run.ts';
import { scratchDir, scratchRoot } from './support/scratch.ts';

const GUESTLENS = join(repoRoot, 'cli', 'bin', 'guestlens');

/** Every read command, as a user runs it on IMAGE (the journal-less guest: log falls back to text files). */
function readCommands(image: string, out: string): string[][] {
  return [
    ['df', image],
    ['df', '--json', '-h', image],
    ['filesystems', '--long', image],
    ['inspect', '--json', image],
    ['ls', '-lR', image, '/'],
    ['cat', image, '/etc/hostname'],
    ['stat', image, '/etc/hostname'],
    ['hash', image, '/etc/hostname'],
    ['timeline', image],
    ['tail', '-n', '2', image, '/var/log/messages'],
    ['log', image],
    ['copy-out', image, '/etc', out],
    ['check', image],
    ['image', 'info', image],
    ['image', 'cat', image, '--length', '64K'],
    ['locks', image],
  ];
}

describe('security: the image is only ever read, by anyone who may read it', function () {
  this.timeout(600000);
  let image: string;
  let dir: string;

  before(async () => {
    dir = scratchDir('security');
    const d = await buildDisk('secure', 'gpt', [{ sizeMiB: 16, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'root'], files: { 'etc/hostname': 'secure\n', 'etc/os-release': 'ID=debian\nVERSION_ID=12\n', 'etc/fstab': 'LABEL=root / ext4 defaults 0 1\n', 'var/log/messages': 'one\ntwo\nthree\n' } } }]);
    image = await toQcow2(d.raw, join(dir, 'secure.qcow2'));
  });

  it('no process opens the image for writing (strace -f of every open, every read command)', async function () {
    if (!(await haveTool('strace'))) {
      console.log('      strace is not installed (Debian package strace): cannot watch the opens');
      return this.skip();
    }
    const real = realpathSync(image);
    await guardImages([image], async () => {
      for (const [i, args] of readCommands(image, scratchDir(`out-${Math.random().toString(36).slice(2)}`)).entries()) {
        const trace = join(dir, `trace-${i}`);
        const r = await execa('strace', ['-f', '-qq', '-e', 'trace=open,openat,openat2,creat,truncate', '-o', trace, GUESTLENS, ...args], { reject: false });
        assert.ok([0, 3].includes(r.exitCode ?? -1), `${args.join(' ')}: exit ${r.exitCode}: ${r.stderr}`);
        const opens = readFileSync(trace, 'utf8').split('\n').filter((l) => l.includes(`"${real}"`) || l.includes(`"${image}"`));
        assert.ok(opens.length > 0 || args[0] === 'locks' || args[0] === 'check', `${args.join(' ')}: the trace shows no open of the image (the test would not see a write)`);
        const writing = opens.filter((l) => /O_WRONLY|O_RDWR|O_TRUNC|O_CREAT|creat\(|truncate\(/.test(l));
        assert.deepEqual(writing, [], `${args.join(' ')} opened the image for writing`);
      }
    });
  });

  it('every read command works as nobody on a world-readable image (no root needed)', async function () {
    if (!(await haveTool('setpriv'))) {
      console.log('      setpriv is not installed (Debian package util-linux): cannot drop privileges');
      return this.skip();
    }
    // nobody must reach the image and have a temporary directory of its own.
    chmodSync(scratchRoot(), 0o755);
    chmodSync(dir, 0o755);
    chmodSync(image, 0o644);
    const tmp = join(dir, 'nobody-tmp');
    mkdirSync(tmp, { mode: 0o1777 });
    chmodSync(tmp, 0o1777);
    await guardImages([image], async () => {
      for (const args of readCommands(image, tmp)) {
        if (args[0] === 'copy-out') continue; // owners can only be kept by root; covered by the forensics tests
        const r = await execa('setpriv', ['--reuid', 'nobody', '--regid', 'nogroup', '--clear-groups', GUESTLENS, ...args], { reject: false, env: { TMPDIR: tmp, HOME: tmp, PATH: process.env.PATH ?? '' } });
        assert.ok([0, 3].includes(r.exitCode ?? -1), `${args.join(' ')} as nobody: exit ${r.exitCode}: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /EACCES|permission denied|EPERM/i, `${args.join(' ')} as nobody`);
      }
    });
  });
});
