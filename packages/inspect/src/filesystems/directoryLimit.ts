/**
 * How many entries one directory listing may hold, for every driver. A
 * listing is held in memory whole (readdir returns an array, and `ls -l`
 * needs every entry's stat for its column widths), about 1.6 KiB an entry
 * through `ls -l`: two million keeps the CLI well inside Node's 4 GiB heap.
 * A directory past it is not damage (a guest may well make one), so the
 * error says whose limit it is, never "corrupt".
 */
import { FilesystemError } from './errors.ts';

export const MAX_DIRECTORY_ENTRIES = 2_000_000;

/** The error for a directory past the limit: `directory` names it ("directory inode 12"). */
export function directoryTooLarge(image: string, directory: string, max: number): FilesystemError {
  return new FilesystemError(
    'EFBIG',
    image,
    `${directory} has more than ${max} entries, over guestlens's limit for one directory listing (a listing is held in memory); list its entries by name, or read the filesystem with a tool that streams directories`,
    { data: { limit: max } },
  );
}
