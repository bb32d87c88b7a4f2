/**
 * The daemon and its directory never outlive the process that opened the
 * source: a child node process opens one and is then signalled (or exits
 * without closing it); the daemon's pid, `pgrep -f <socket>` and the
 * directory are checked afterwards.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTracked, waitFor, type Tracked } from '../../../test/support/processes.ts';
import { repoRoot } from '../../../test/support/run.ts';
import { scratchDir } from '../../../test/support/scratch.ts';
import { makeImage, MiB, alive, assertDaemonGone, pgrep } from './helpers.ts';

const fixture = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'holdOpen.ts');

interface DaemonInfo {
  pid: number;
  socket: string;
  dir: string;
}

async function holdOpen(image: string, mode = 'wait'): Promise<{ child: Tracked; daemon: DaemonInfo; output: () => string }> {
  const child = startTracked('node', ['--import', 'tsx', fixture, image, mode], { cwd: repoRoot, input: mode === 'exit' });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const line = await waitFor('the fixture to open the image', () => {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the fixture exited early:\n${out}`);
    return out.includes('\n') ? out.slice(0, out.indexOf('\n')) : undefined;
  }, 20_000);
  const daemon = JSON.parse(line) as DaemonInfo;
  assert.ok(alive(daemon.pid), 'the daemon runs while the source is open');
  assert.ok((await pgrep(daemon.socket)).includes(daemon.pid));
  assert.ok(existsSync(daemon.dir));
  return { child, daemon, output: () => out };
}

describe('openWithQemu exit paths (a child process holding a source)', function () {
  let image: string;
  before(async function () {
    image = await makeImage(scratchDir('nbd-exit'), 'qed', 8 * MiB, 3);
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal}: the daemon and its directory are gone, and the process still dies of ${signal}`, async function () {
      const { child, daemon } = await holdOpen(image);
      process.kill(child.pid, signal);
      const result = await child;
      assert.equal(result.signal, signal, `the fixture died of ${signal} (exit code ${result.exitCode})`);
      await assertDaemonGone(daemon);
    });
  }

  it('process.exit() without close(): the exit hook stops the daemon, the exit code stays', async function () {
    const { child, daemon } = await holdOpen(image, 'exit');
    child.stdin?.write('go\n');
    const result = await child;
    assert.equal(result.exitCode, 3);
    await assertDaemonGone(daemon);
  });

  it("a program's own SIGTERM handler decides the exit; the daemon is stopped all the same", async function () {
    const { child, daemon } = await holdOpen(image, 'own-handler');
    process.kill(child.pid, 'SIGTERM');
    const result = await child;
    assert.equal(result.exitCode, 7);
    await assertDaemonGone(daemon);
  });

  it('SIGKILL: the watchdog stops the daemon (the directory stays: nothing runs to remove it)', async function () {
    const { child, daemon } = await holdOpen(image);
    process.kill(child.pid, 'SIGKILL');
    await child;
    await waitFor(`daemon ${daemon.pid} to exit`, async () => !alive(daemon.pid) && (await pgrep(daemon.socket)).length === 0, 5000);
    assert.ok(existsSync(daemon.dir), 'documented: SIGKILL leaves the private directory');
    rmSync(daemon.dir, { recursive: true, force: true });
  });
});
