/**
 * Run-wide hooks: stop every tracked process after each test (so a failing
 * test cannot leave a qemu-storage-daemon behind), and at the very end check
 * that guestlens left no temporary file behind, then remove the scratch root.
 */
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { stopAll } from './processes.ts';
import { removeScratch } from './scratch.ts';

/** Names of the product's temporary files and directories (overlay dirs etc.). */
export const PRODUCT_TMP_PREFIX = 'guestlens-';

export function productTempEntries(): string[] {
  return readdirSync(tmpdir()).filter((n) => n.startsWith(PRODUCT_TMP_PREFIX));
}

let before: Set<string>;

export const mochaHooks = {
  beforeAll(): void {
    before = new Set(productTempEntries());
  },
  async afterEach(): Promise<void> {
    await stopAll();
  },
  async afterAll(): Promise<void> {
    await stopAll();
    removeScratch();
    const left = productTempEntries().filter((n) => !before.has(n));
    if (left.length) {
      // Thrown from a root hook, this fails the run: the overlay package promises to clean up.
      throw new Error(`guestlens left temporary files in ${tmpdir()}: ${left.join(', ')}`);
    }
  },
};
