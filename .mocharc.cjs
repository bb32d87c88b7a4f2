// Shared mocha settings. Which files run is decided by the caller: scripts/test.mjs
// passes every test glob; `pnpm exec mocha FILE...` runs just those files.
module.exports = {
  import: ['tsx'],
  require: ['test/support/rootHooks.ts'],
  reporter: 'test/support/summary-reporter.cjs',
  timeout: 120000,
  slow: 5000,
};
