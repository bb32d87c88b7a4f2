/**
 * Windows roots: a filesystem with a Windows\System32 tree (names matched
 * without regard to case, as Windows matches them). The registry's facts
 * (product name, version, hostname, drive letters, applications) come with
 * the hive reader; until then a Windows guest is recognised and named.
 */
import { GuestPathError } from '../errors.ts';
import type { FileTree } from '../guest/guestFilesystem.ts';

/** The system root ("/Windows", "/WINNT", as the names are stored) or undefined. */
export async function windowsSystemRoot(tree: FileTree): Promise<string | undefined> {
  try {
    for (const top of await tree.readdir('/')) {
      if (!['windows', 'winnt'].includes(top.name.toLowerCase())) continue;
      const inside = await tree.readdir(`/${top.name}`).catch(() => []);
      if (inside.some((e) => e.name.toLowerCase() === 'system32')) return `/${top.name}`;
    }
  } catch (err) {
    if (!(err instanceof GuestPathError)) throw err;
  }
  return undefined;
}
