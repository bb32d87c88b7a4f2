import assert from 'node:assert/strict';
describe('test harness', () => {
  it('runs TypeScript tests', () => {
    assert.equal(1 + 1, 2);
  });
});
