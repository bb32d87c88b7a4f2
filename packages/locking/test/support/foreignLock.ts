/**
 * A POSIX write lock held by another program (Python's fcntl.lockf): QEMU
 * never takes write locks, so this is how a foreign locker looks. Returns once
 * the lock is taken; the process is tracked and stopped after the test.
 */
import { startTracked, waitFor, type Tracked } from '../../../../test/support/processes.ts';

/** Lock `length` bytes from `start` (length 0: from `start` to end of file). */
export async function holdForeignWriteLock(image: string, start = 0, length = 0): Promise<{ pid: number; child: Tracked }> {
  const py = startTracked('python3', ['-c', [
    'import fcntl, os, sys',
    'fd = os.open(sys.argv[1], os.O_RDWR)',
    'fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, int(sys.argv[3]), int(sys.argv[2]))',
    'print("locked", flush=True)',
    'sys.stdin.read()',
  ].join('\n'), image, String(start), String(length)], { input: true });
  let out = '';
  py.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  await waitFor(`python to lock ${length ? `bytes ${start}..${start + length - 1}` : 'the file'} of ${image}`, () => out.includes('locked'));
  // Not the child itself: a subprocess is a promise, and returning it from an async function would wait for its exit.
  return { pid: py.pid, child: py };
}
