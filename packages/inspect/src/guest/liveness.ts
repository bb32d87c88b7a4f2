/**
 * Is an image being written while we read it? Only then is a torn read
 * worth retrying, and only then may a message say so. Two signs, either is
 * enough:
 *  - QEMU's locks: some process holds the image with the "write" permission
 *    (the locking package's probe; a running VM, qemu-storage-daemon);
 *  - the file changed since the guest was opened (size, mtime or ctime): a
 *    writer that takes no QEMU locks (a loop mount, a copy in progress).
 * The probe loads the locking package (a native module) only when a
 * retryable error asks the question.
 */
import { statSync } from 'node:fs';

export interface Liveness {
  live: boolean;
  /** Who or what writes it, for messages ("in use read-write by qemu-system-x86_64 (pid 1234)", "changed while it was read"). */
  reason?: string;
}

interface Snapshot {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

function snapshot(path: string): Snapshot | undefined {
  try {
    const st = statSync(path);
    return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
  } catch {
    return undefined;
  }
}

export class LivenessWatch {
  private readonly initial: Snapshot | undefined;

  constructor(readonly path: string) {
    this.initial = snapshot(path);
  }

  async check(): Promise<Liveness> {
    const now = snapshot(this.path);
    if (!now) return { live: true, reason: `${this.path} disappeared while it was read` };
    const then = this.initial;
    if (then && (now.size !== then.size || now.mtimeMs !== then.mtimeMs || now.ctimeMs !== then.ctimeMs)) {
      return { live: true, reason: `${this.path} changed while it was read` };
    }
    try {
      const { probe } = await import('@guestlens/locking');
      const r = await probe(this.path);
      if (r.uses.includes('write')) return { live: true, reason: `${this.path} is ${r.verdict.split(': ')[0]}` };
    } catch {
      // An image we cannot probe (a block device without permission, a special file): no sign of a writer.
    }
    return { live: false };
  }
}

/** Whether any of the watches shows a writer; the first reason found. */
export async function checkAll(watches: readonly LivenessWatch[]): Promise<Liveness> {
  for (const w of watches) {
    const l = await w.check();
    if (l.live) return l;
  }
  return { live: false };
}
