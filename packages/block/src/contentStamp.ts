/**
 * A token that changes whenever the bytes of an open host file may have
 * changed, so a follower polling an idle guest (tail -f, log -f, the
 * exporter) need not re-read every structure of it each poll.
 *
 * A write through write(2) or O_DIRECT updates mtime and ctime on a local
 * filesystem before it returns, and a truncation or growth changes the size,
 * so (size, mtime, ctime, device, inode) changes with the bytes, with two
 * exceptions this module answers "cannot tell" (undefined) for:
 *  - mtime comes from a coarse clock: a write in the same tick as the one
 *    before it leaves mtime as it was. A file modified within SETTLE_MS of
 *    now is not trusted: a token taken later than that is, because any
 *    write after it gets a later tick;
 *  - network and FUSE filesystems may serve cached or another host's
 *    attributes, and a block device's times do not follow its writes: only
 *    regular files on the local filesystems listed are stamped.
 */
import { fstatSync, statfsSync } from 'node:fs';

/** How long after its last change a file's times are trusted to move on the next write. */
export const SETTLE_MS = 2000;

/** statfs f_type of the filesystems whose times follow every write made on this host. */
const LOCAL_FILESYSTEMS = new Map<number, string>([
  [0xef53, 'ext2/3/4'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x01021994, 'tmpfs'],
  [0x794c7630, 'overlayfs'],
  [0x2fc12fc1, 'zfs'],
  [0xf2f52010, 'f2fs'],
]);

/** The content token of the open file `fd`, or undefined when its times cannot be trusted (see above). */
export function contentStamp(fd: number, now = Date.now()): string | undefined {
  try {
    const st = fstatSync(fd, { bigint: true });
    if (!st.isFile()) return undefined;
    if (!LOCAL_FILESYSTEMS.has(Number(statfsSync(`/proc/self/fd/${fd}`).type))) return undefined;
    const changedMs = Number((st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs) / 1_000_000n);
    if (now - changedMs < SETTLE_MS) return undefined;
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    return undefined;
  }
}
