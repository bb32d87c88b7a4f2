// Mocha's spec reporter, plus the one-line summary CI reads: "N passed, N failed[, N skipped]".
// CommonJS because mocha loads reporters with require().
'use strict';
const Mocha = require('mocha');
const { Spec } = Mocha.reporters;
const { EVENT_RUN_END, EVENT_TEST_PENDING } = Mocha.Runner.constants;

class SummaryReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    const skipped = [];
    runner.on(EVENT_TEST_PENDING, (test) => skipped.push(test.fullTitle()));
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats;
      // Spec prints its epilogue on the same event; ours must come last.
      setImmediate(() => {
        if (skipped.length) {
          process.stdout.write('\nSkipped (each test says why in its output):\n');
          for (const t of skipped) process.stdout.write(`  - ${t}\n`);
        }
        const parts = [`${s.passes} passed`, `${s.failures} failed`];
        if (s.pending) parts.push(`${s.pending} skipped`);
        process.stdout.write(`\n${parts.join(', ')}\n`);
      });
    });
  }
}
module.exports = SummaryReporter;
