/**
 * Long-running helper processes (qemu-storage-daemon, qemu-io kept open, ...)
 * started by tests. Every one is registered here and stopped by pid when its
 * test ends, also when the test fails, and again at the end of the run.
 */
import { execa, type ResultPromise } from 'execa';

export type Tracked = ResultPromise<{ reject: false; buffer: true }> & { pid: number };

const running = new Set<Tracked>();
/** Started in a before() hook for a whole suite: not stopped after each test, only by the suite's after() or at the end of the run. */
const suiteScoped = new Set<Tracked>();

/** Start a process and keep it tracked; its stdout/stderr are collected for diagnostics. */
export function startTracked(file: string, args: string[], options: { cwd?: string; env?: Record<string, string>; input?: boolean; suite?: boolean } = {}): Tracked {
  const child = execa(file, args, {
    cwd: options.cwd,
    env: options.env,
    reject: false,
    buffer: true,
    stdin: options.input ? 'pipe' : 'ignore',
    detached: false,
    cleanup: true,
  }) as unknown as Tracked;
  if (!child.pid) throw new Error(`could not start ${file}`);
  running.add(child);
  if (options.suite) suiteScoped.add(child);
  void child.finally(() => {
    running.delete(child);
    suiteScoped.delete(child);
  });
  return child;
}

/** Stop one tracked process: SIGTERM, then SIGKILL after a grace period. */
export async function stop(child: Tracked, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    running.delete(child);
    return;
  }
  try { process.kill(child.pid, 'SIGTERM'); } catch { /* already gone */ }
  const timer = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, graceMs);
  await child;
  clearTimeout(timer);
  running.delete(child);
}

/** Stop every tracked process; with `testScopedOnly`, leave those a suite started for all its tests. */
export async function stopAll(testScopedOnly = false): Promise<void> {
  await Promise.all([...running].filter((c) => !testScopedOnly || !suiteScoped.has(c)).map((c) => stop(c)));
}

export function runningCount(): number {
  return running.size;
}

/** Poll until `check` returns a truthy value; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as T;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
