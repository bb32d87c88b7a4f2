/**
 * A hostile guest's bytes never reach a terminal raw. The guest below puts
 * terminal escapes (an OSC 52 clipboard write, CSI colour and cursor codes, a
 * C1 CSI, BEL) in everything it controls that guestlens prints: a filesystem
 * label, the hostname, the OS name, file names, a log file's lines, and a
 * path that ends in an error message. Every text command runs on a real
 * pseudo-terminal (script(1)), as a user at a shell would run it, and its
 * output (stdout and stderr both reach the terminal) must hold no ESC, BEL or
 * C1 control, and show the escape written out instead.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildDisk, haveTool } from './support/guestDisk.ts';
import { guardImages } from './support/imageGuard.ts';
import { repoRoot, sh } from './support/run.ts';

const OSC52 = '\x1b]52;c;cHduZWQ=\x07';
const CSI = '\x1b[2J\x1b[31m';
const C1 = '\u009b6n';

/** bash's $'...' quoting, so control bytes in an argument reach the program as bytes. */
function bashQuote(arg: string): string {
  return `$'${[...Buffer.from(arg, 'utf8')].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x27 && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('')}'`;
}

/** Run on a pseudo-terminal; what the terminal would show (stdout and stderr, \r\n as the tty writes it). */
async function onTerminal(args: string[]): Promise<string> {
  const command = [join(repoRoot, 'cli/bin/guestlens'), ...args].map(bashQuote).join(' ');
  // script runs the command with $SHELL on a new pseudo-terminal; "; true": we look at what it printed whatever its status.
  return sh('script', ['-qec', `${command}; true`, '/dev/null'], { env: { ...process.env, SHELL: '/bin/bash' } as Record<string, string> });
}

describe('security: guest-controlled text is escaped on a terminal, in every command that prints it', function () {
  this.timeout(180000);
  let disk: string;

  before(async function () {
    if (!(await haveTool('script'))) {
      console.log('      script(1) is missing (Debian package bsdutils): no pseudo-terminal to run the commands on');
      this.skip();
    }
    const files = {
      'etc/hostname': `evil${OSC52}host\n`,
      'etc/os-release': `NAME="Debian"\nID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian ${CSI}GNU/Linux 12"\n`,
      'etc/fstab': '/dev/sda1 / ext4 defaults 0 1\n',
      'bin/sh': '#!/bin/sh\n',
      [`srv/clip${OSC52}board`]: 'x\n',
      [`srv/c1${C1}name`]: 'y\n',
      'var/log/evil.log': `plain line\nclipboard ${OSC52} line\ncolour ${CSI}line ${C1}\n`,
    };
    // The label carries the escape too (16 bytes at most: ESC [ 3 1 m and BEL fit).
    const d = await buildDisk('escapes', 'gpt', [{ sizeMiB: 24, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'r\x1b[31m\x07oot'], files } }]);
    disk = d.raw;
  });

  it('filesystems, inspect, ls -lR, stat, hash, cat, tail, timeline and an error naming a hostile path: no raw escape reaches the terminal', async () => {
    const cases: [string, string[], RegExp][] = [
      ['filesystems --long (label)', ['filesystems', '--long', '--format', 'raw', disk], /r\\033\[31m\\aoot/],
      ['inspect (hostname, product name)', ['inspect', '--format', 'raw', disk], /evil\\033\]52;c;cHduZWQ=\\ahost/],
      ['ls -lR (names)', ['ls', '-lR', '--format', 'raw', disk, '/srv'], /clip\\033\]52;c;cHduZWQ=\\aboard/],
      ['stat (a name)', ['stat', '--format', 'raw', disk, `/srv/clip${OSC52}board`], /clip\\033\]52/],
      ['hash (a name)', ['hash', '--format', 'raw', disk, `/srv/c1${C1}name`], /c1\\302\\2336nname/],
      ['cat (file contents)', ['cat', '--format', 'raw', disk, '/var/log/evil.log'], /clipboard \\033\]52;c;cHduZWQ=\\a line/],
      ['tail (log lines)', ['tail', '-n', '3', '--format', 'raw', disk, '/var/log/evil.log'], /colour \\033\[2J\\033\[31mline \\302\\2336n/],
      ['timeline (body file names, escaped as its body-file rules say)', ['timeline', '--format', 'raw', disk], /clip\\x1b\]52;c;cHduZWQ=\\x07board.*\n.*c1\\xc2\\x9b6nname|c1\\xc2\\x9b6nname[^]*clip\\x1b\]52/],
      ['an error naming a hostile path', ['cat', '--format', 'raw', disk, `/srv/clip${OSC52}board/missing`], /clip(\\033|\\u001b)\]52;c;cHduZWQ=(\\a|\\u0007)board/],
    ];
    await guardImages([disk], async () => {
      for (const [what, args, shown] of cases) {
        const out = await onTerminal(args);
        assert.doesNotMatch(out, /[\x1b\x07\u0080-\u009f]/u, `${what}: a raw control character reached the terminal:\n${JSON.stringify(out)}`);
        assert.match(out, shown, `${what}: the escape is shown written out:\n${out}`);
      }
    });
  });

  it('--raw is the opt-out: cat --raw and tail --raw pass the guest bytes through as they are', async () => {
    const cat = await onTerminal(['cat', '--raw', '--format', 'raw', disk, '/var/log/evil.log']);
    assert.ok(cat.includes(OSC52), 'cat --raw writes the bytes unchanged');
    const tail = await onTerminal(['tail', '--raw', '-n', '3', '--format', 'raw', disk, '/var/log/evil.log']);
    assert.ok(tail.includes(OSC52), 'tail --raw writes the bytes unchanged');
  });
});
