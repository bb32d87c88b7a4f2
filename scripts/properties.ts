/**
 * pnpm test:properties [RUNS] [-- mocha args]: the fast-check property tests
 * (test/properties/: images against QEMU, trees against the kernel) with
 * many more runs than the suite's few, and a new seed each time unless
 * GUESTLENS_PROPERTY_SEED is set. Each property prints its seed; a failure
 * prints the shrunk counterexample, its seed and path (rerun it exactly with
 * GUESTLENS_PROPERTY_SEED=S GUESTLENS_PROPERTY_PATH=P) and, for images, the
 * commands that rebuild it. Default: 200 runs per property.
 */
import { spawnSync } from 'node:child_process';

const [runs, ...rest] = process.argv.slice(2);
const env = {
  ...process.env,
  GUESTLENS_PROPERTY_RUNS: process.env.GUESTLENS_PROPERTY_RUNS ?? (runs && /^\d+$/.test(runs) ? runs : '200'),
  GUESTLENS_PROPERTY_SEED: process.env.GUESTLENS_PROPERTY_SEED ?? 'random',
};
const args = runs && !/^\d+$/.test(runs) ? [runs, ...rest] : rest;
const files = args.some((a) => a.endsWith('.ts')) ? [] : ['test/properties/*.test.ts'];
const r = spawnSync('pnpm', ['-s', 'exec', 'mocha', '--timeout', '0', ...files, ...args], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
