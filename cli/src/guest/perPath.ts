/**
 * Commands that act on several guest paths (cat, stat, hash): each path's
 * failure is said on stderr, naming the guest and the path, and the others
 * go on. Exit 1 when every path failed, 3 when some did.
 */
import { isUserFacing } from '@guestlens/block';
import { EXIT_ERROR, EXIT_PARTIAL } from '../errors.ts';
import { safeText } from '../output/names.ts';

export async function forEachPath(command: string, guestName: string, paths: string[], fn: (path: string) => Promise<void>): Promise<void> {
  let failed = 0;
  for (const path of paths) {
    try {
      await fn(path);
    } catch (err) {
      if (!isUserFacing(err)) throw err;
      failed++;
      process.stderr.write(`guestlens: ${command}: ${guestName}: ${safeText((err as Error).message)}\n`);
    }
  }
  if (failed === paths.length && failed > 0) process.exitCode = EXIT_ERROR;
  else if (failed > 0) process.exitCode = EXIT_PARTIAL;
}
