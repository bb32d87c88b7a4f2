/**
 * Run-wide hooks: point TMPDIR at this run's private temporary directory, stop
 * every tracked process after each test (so a failing test cannot leave a
 * qemu-storage-daemon behind), and at the very end check that guestlens left
 * no temporary file behind, then remove the scratch root.
 */
import { readdirSync } from 'node:fs';
import { stopAll } from './processes.ts';
import { unmountAll } from './kernel.ts';
import { removeScratch, runTmpDir } from './scratch.ts';

/** Names of the product's temporary files and directories (overlay dirs etc.). */
export const PRODUCT_TMP_PREFIX = 'guestlens-';

const runTmp = runTmpDir();
process.env.TMPDIR = runTmp;

export function productTempEntries(): string[] {
  return readdirSync(runTmp).filter((n) => n.startsWith(PRODUCT_TMP_PREFIX));
}

export const mochaHooks = {
  async afterEach(): Promise<void> {
    await stopAll(true);
    // Kernel loop mounts a test left (kernel.ts): unmounted before the scratch space they live in goes.
    await unmountAll();
  },
  async afterAll(): Promise<void> {
    await stopAll();
    await unmountAll();
    const left = productTempEntries();
    removeScratch();
    if (left.length) {
      // Thrown from a root hook, this fails the run: the overlay package promises to clean up.
      throw new Error(`guestlens left temporary files behind in TMPDIR: ${left.join(', ')}`);
    }
  },
};
