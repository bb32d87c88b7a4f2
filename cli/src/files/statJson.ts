/** Timestamps and stat results as JSON: seconds, nanoseconds, and an ISO string for people. */
import type { Timestamp } from '@guestlens/inspect';

export function timestampJson(t: Timestamp): { sec: number; nsec: number; iso: string } {
  const ms = t.sec * 1000 + Math.floor(t.nsec / 1e6);
  const iso = Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? `${new Date(ms).toISOString().slice(0, 19)}.${String(t.nsec).padStart(9, '0')}Z` : '';
  return { sec: t.sec, nsec: t.nsec, iso };
}
