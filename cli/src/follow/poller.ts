/**
 * Following a live guest: poll every interval until SIGINT/SIGTERM (exit 0,
 * after the caller's clean-up: the overlay is removed), or until the process
 * named by --pid has exited (as `tail --pid` does). A tick never overlaps the
 * next: a slow read delays the poll, it does not pile polls up.
 */
export interface PollOptions {
  intervalMs: number;
  /** Stop when this process is gone. */
  pid?: number;
  /** One poll; return false to stop following. */
  tick(): Promise<boolean | void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Resolves when following ends (a signal, the watched process gone, or tick() saying stop). */
export async function pollUntilStopped(o: PollOptions): Promise<'signal' | 'pid' | 'done'> {
  let stop: ((why: 'signal' | 'pid' | 'done') => void) | undefined;
  let stopped: 'signal' | 'pid' | 'done' | undefined;
  const ended = new Promise<'signal' | 'pid' | 'done'>((resolve) => {
    stop = (why) => {
      stopped ??= why;
      resolve(stopped);
    };
  });
  const onSignal = () => stop?.('signal');
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    while (!stopped) {
      const wait = new Promise<void>((r) => {
        const t = setTimeout(r, o.intervalMs);
        void ended.then(() => {
          clearTimeout(t);
          r();
        });
      });
      await wait;
      if (stopped) break;
      if (o.pid !== undefined && !alive(o.pid)) {
        stop?.('pid');
        break;
      }
      if ((await o.tick()) === false) stop?.('done');
    }
    return ended;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** An interval in seconds (fractions allowed) as milliseconds, or a usage error's text. */
export function intervalMs(seconds: number, option = '--interval'): number {
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) throw new RangeError(`${option} ${seconds}: give a number of seconds above 0 (fractions allowed), at most 3600`);
  return Math.round(seconds * 1000);
}
