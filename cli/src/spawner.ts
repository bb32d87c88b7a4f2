/**
 * Programs (qemu-img for overlays, virsh) started from a helper process,
 * forked before any image is opened, instead of from guestlens itself.
 * libuv's spawn blocks the event loop until the child has exec'd, and
 * exec(2) closes the parent's close-on-exec fds in the child. So:
 *  - the exporter: closing a file on a FUSE mount sends the FUSE daemon a
 *    flush; with one image behind an export whose daemon stopped answering,
 *    every spawn would freeze the event loop, /metrics with it, until the
 *    daemon answered. The helper holds no image open: its children exec at
 *    once;
 *  - df over many guests (-P): an overlay per guest is a qemu-img each, and
 *    each spawn held the event loop ~20 ms while other guests waited to be
 *    parsed (100 guests: 2.3 s of the run). From the helper, spawning runs
 *    beside the parsing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { CommandRunner } from '@guestlens/overlay';

// The helper, CommonJS for `node -e`: one JSON request per line in, one answer per line out.
const HELPER = `
const { execFile } = require('node:child_process');
const rl = require('node:readline').createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const m = JSON.parse(line);
  execFile(m.file, m.args, { env: { ...process.env, ...m.env }, maxBuffer: 256 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
    const started = !err || typeof err.code === 'number';
    process.stdout.write(JSON.stringify({ id: m.id, exitCode: started ? (err ? err.code : 0) : null, code: started ? undefined : err.code, message: err && !started ? err.message : undefined, stdout, stderr }) + '\\n');
  });
});
rl.on('close', () => process.exit(0));
`;

interface Answer {
  id: number;
  exitCode: number | null;
  code?: string;
  message?: string;
  stdout: string;
  stderr: string;
}

export class Spawner {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, (a: Answer) => void>();
  private next = 1;
  private dead: string | undefined;

  constructor() {
    this.child = spawn(process.execPath, ['-e', HELPER], { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const a = JSON.parse(line) as Answer;
      this.waiting.get(a.id)?.(a);
      this.waiting.delete(a.id);
    });
    this.child.on('exit', (code, signal) => {
      this.dead = `the exporter's spawner exited (${signal ?? code})`;
      for (const [, done] of this.waiting) done({ id: 0, exitCode: null, code: 'ESPAWNER', message: this.dead, stdout: '', stderr: '' });
      this.waiting.clear();
    });
  }

  readonly run: CommandRunner = (file, args, env) => {
    if (this.dead) return Promise.resolve({ exitCode: undefined, code: 'ESPAWNER', message: this.dead, stdout: '', stderr: '' });
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, (a) => resolve({ exitCode: a.exitCode ?? undefined, code: a.code, message: a.message, stdout: a.stdout, stderr: a.stderr }));
      this.child.stdin!.write(`${JSON.stringify({ id, file, args, env })}\n`);
    });
  };

  close(): void {
    this.child.stdin!.end();
  }
}

/** Run `fn` with every qemu-img started from a helper (see above); the helper ends with it. */
export async function withSpawner<T>(fn: () => Promise<T>): Promise<T> {
  const { useCommandRunner } = await import('@guestlens/overlay');
  const spawner = new Spawner();
  useCommandRunner(spawner.run);
  try {
    return await fn();
  } finally {
    useCommandRunner(undefined);
    spawner.close();
  }
}
