#!/usr/bin/env node
// The test command: type-check everything, then run the whole mocha suite.
// The last line printed is always "N passed, N failed[, N skipped]".
import { spawnSync } from 'node:child_process';

const tc = spawnSync('pnpm', ['-s', 'typecheck'], { stdio: 'inherit' });
if (tc.status !== 0) {
  process.stdout.write('\ntype check failed (see above); tests not run\n0 passed, 1 failed\n');
  process.exit(1);
}
const specs = ['packages/*/test/**/*.test.ts', 'cli/test/**/*.test.ts', 'test/**/*.test.ts'];
const args = process.argv.length > 2 ? process.argv.slice(2) : specs;
const mocha = spawnSync('pnpm', ['-s', 'exec', 'mocha', ...args], { stdio: 'inherit' });
process.exit(mocha.status ?? 1);
