/**
 * Reading a live guest again when a read was torn: a running VM (or any
 * writer) may change metadata while we read it, so a checksum or consistency
 * error there can be a half-written update rather than damage. Only when the
 * guest is live (liveness.ts) is the read repeated — after a refresh, never
 * by reopening — a few times; an image nobody writes is damaged, and saying
 * "retry" of it would only mislead.
 */
import { isRetryable } from '@guestlens/block';
import type { Guest } from './guest.ts';
import type { Liveness } from './liveness.ts';

export interface RetryOptions {
  /** Attempts in all (default 3). */
  attempts?: number;
  /** Pause before each new attempt, so a writer can finish its update (default 200 ms). */
  delayMs?: number;
  /** Called after an attempt that failed in a retryable way, before the guest is judged live (tests mend images here). */
  afterFailedAttempt?(attempt: number): Promise<void> | void;
}

export const DEFAULT_ATTEMPTS = 3;
export const DEFAULT_RETRY_DELAY_MS = 200;

export interface Attempted<T> {
  value: T;
  /** Attempts made. */
  attempts: number;
  /** Set when the guest was found live (why): the problems left may be torn reads, not damage. */
  live?: Liveness;
}

/**
 * Run `attempt` until `failedRetryably` says its result holds no retryable
 * problem, the guest is not live, or the attempts are used up; between
 * attempts the guest is refreshed.
 */
export async function retryWhileLive<T>(guest: Guest, attempt: () => Promise<T>, failedRetryably: (value: T) => boolean, options: RetryOptions = {}): Promise<Attempted<T>> {
  const attempts = Math.max(1, options.attempts ?? DEFAULT_ATTEMPTS);
  const delayMs = options.delayMs ?? DEFAULT_RETRY_DELAY_MS;
  let live: Liveness | undefined;
  for (let n = 1; ; n++) {
    const value = await attempt();
    if (!failedRetryably(value) || n >= attempts) return { value, attempts: n, live: live?.live ? live : undefined };
    await options.afterFailedAttempt?.(n);
    live = await guest.liveness();
    if (!live.live) return { value, attempts: n };
    await new Promise((r) => setTimeout(r, delayMs));
    await guest.refresh();
  }
}

/** The same for a function that throws: a retryable error on a live guest is tried again after a refresh. */
export async function withRetry<T>(guest: Guest, fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  type Outcome = { ok: true; value: T } | { ok: false; error: unknown };
  const result = await retryWhileLive<Outcome>(
    guest,
    () => fn().then((value): Outcome => ({ ok: true, value }), (error: unknown): Outcome => ({ ok: false, error })),
    (o) => !o.ok && isRetryable(o.error),
    options,
  );
  if (result.value.ok) return result.value.value;
  throw result.value.error;
}
