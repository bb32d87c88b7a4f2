/**
 * Settings for the fast-check property tests (test/properties/): a fixed
 * seed and a few runs in the suite, more from the environment for soaks
 * (`pnpm test:properties`):
 *
 *   GUESTLENS_PROPERTY_RUNS=N    runs per property (default: each test's own small number)
 *   GUESTLENS_PROPERTY_SEED=S    the seed (default: fixed, so the suite is reproducible);
 *                                "random" takes a new one, printed
 *   GUESTLENS_PROPERTY_PATH=P    replay one failing case (fast-check's path, printed on failure)
 *
 * Each property prints its seed and run count, and a failure names the seed
 * and path to rerun exactly that case.
 */
import type { Parameters } from 'fast-check';

export const DEFAULT_SEED = 0x6c656e73;

export function propertySeed(): number {
  const s = process.env.GUESTLENS_PROPERTY_SEED;
  if (s === 'random') return (Date.now() ^ (process.pid << 16)) | 0;
  return s ? Number(s) | 0 : DEFAULT_SEED;
}

export function propertyRuns(inSuite: number): number {
  const n = Number(process.env.GUESTLENS_PROPERTY_RUNS);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : inSuite;
}

/** fast-check parameters for one property: seed, runs, path from the environment; prints them. */
export function propertyParameters<T>(label: string, inSuiteRuns: number, extra: Parameters<T> = {}): Parameters<T> {
  const seed = propertySeed();
  const numRuns = propertyRuns(inSuiteRuns);
  const path = process.env.GUESTLENS_PROPERTY_PATH;
  console.log(`      ${label}: seed ${seed}, ${numRuns} runs${path ? `, replaying path ${path}` : ''} (GUESTLENS_PROPERTY_SEED / _RUNS / _PATH)`);
  return { seed, numRuns, ...(path ? { path } : {}), ...extra };
}

/** An argv as a line a shell runs unchanged. */
export function shellLine(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
