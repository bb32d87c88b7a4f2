import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { runTmpDir } from './support/scratch.ts';
import { guestlens } from './support/run.ts';

describe('test harness', () => {
  it('gives the run a private TMPDIR', () => {
    assert.equal(tmpdir(), runTmpDir());
  });
  it('runs the CLI, which exits 2 with a usage message when no command is named', async () => {
    const r = await guestlens([]);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /Name a command/);
    assert.equal(r.stdout, '');
  });
});
