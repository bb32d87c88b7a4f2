// One mocha run over every package's tests and the cross-package tests.
module.exports = {
  import: ['tsx'],
  require: ['test/support/rootHooks.ts'],
  spec: ['packages/*/test/**/*.test.ts', 'cli/test/**/*.test.ts', 'test/**/*.test.ts'],
  reporter: 'test/support/summary-reporter.cjs',
  timeout: 120000,
  slow: 5000,
};
