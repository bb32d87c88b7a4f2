/**
 * Who holds an image, in QEMU's terms: for each of bytes 100-104 and 200-204,
 * whether another open file holds it, the permission it stands for, and the
 * processes holding it. Needs only read access to the image.
 */
import { closeSync } from 'node:fs';
import { detectLockApi, FcntlError, testByte, type LockApi } from './fcntl.ts';
import { openImage, openImageAsync, statImage, statImageAsync } from './imageFile.ts';
import { posixLockFd } from './imageLock.ts';
import { covers, findLockRecords, type LockHolder, type LockRecord } from './lockRecords.ts';
import { decodeByte, PERMISSIONS, PROBED_BYTES, type PermissionName } from './permissions.ts';
import { verdictOf } from './verdict.ts';
import { LockingError } from './errors.ts';

export interface ByteState {
  byte: number;
  permission: PermissionName;
  /** "use": a holder uses the permission; "unshare": a holder refuses to share it. */
  role: 'use' | 'unshare';
  held: boolean;
  holders: LockHolder[];
}

/** One open file of one process holding some of the image's bytes. */
export interface ImageHolder extends LockHolder {
  uses: PermissionName[];
  refusesToShare: PermissionName[];
  bytes: number[];
}

export interface ProbeResult {
  path: string;
  /** How we tested (OFD unless the kernel lacks it). */
  lockApi: LockApi;
  bytes: ByteState[];
  /** Held bytes, ascending: the compact form of `bytes`. */
  heldBytes: number[];
  holders: ImageHolder[];
  /** Union over all holders. */
  uses: PermissionName[];
  refusesToShare: PermissionName[];
  /** One line for people: "free", "in use read-write by qemu-system-x86_64 (pid 1234): reading needs an overlay", ... */
  verdict: string;
}

function holderKey(h: LockHolder): string {
  return `${h.pid}:${h.fd}:${h.kind}`;
}

/**
 * `nonBlocking`: stat and open the image in libuv's thread pool rather than
 * on the event loop (a server probing images that may stop answering; see
 * openImageAsync). The lock tests themselves are local to the kernel.
 */
export async function probe(path: string, options: { nonBlocking?: boolean } = {}): Promise<ProbeResult> {
  const api = detectLockApi();
  const identity = options.nonBlocking ? await statImageAsync(path) : statImage(path);
  // Where this process holds POSIX locks, closing any other fd of the image would drop them: reuse that fd.
  const borrowed = posixLockFd(identity);
  const opened = borrowed === undefined && options.nonBlocking ? await openImageAsync(path, identity) : undefined;
  const fd = borrowed ?? opened?.fd ?? openImage(path, identity).fd;
  const conflicts = new Map<number, boolean>();
  try {
    for (const byte of PROBED_BYTES) {
      try {
        conflicts.set(byte, testByte(fd, api, byte).conflict);
      } catch (err) {
        if (err instanceof FcntlError) throw new LockingError(`${path}: cannot test lock byte ${byte}: ${err.message}`, 'ELOCKTEST');
        throw err;
      }
    }
  } finally {
    if (borrowed === undefined) {
      if (opened) await opened.close();
      else closeSync(fd);
    }
  }
  // Our probing fd held nothing, so every record is someone else's.
  const records = await findLockRecords(identity);

  const bytes: ByteState[] = PROBED_BYTES.map((byte) => {
    const { permission, role } = decodeByte(byte)!;
    const holders = uniqueHolders(records.filter((r) => covers(r, byte)));
    return { byte, permission: permission.name, role, held: conflicts.get(byte)! || holders.length > 0, holders };
  });
  // A held byte whose holder /proc does not show (another user's process, another pid namespace).
  for (const b of bytes) if (b.held && b.holders.length === 0) b.holders.push({ pid: null, command: null, fd: null, kind: api });

  const holders = imageHolders(bytes);
  const result: ProbeResult = {
    path,
    lockApi: api,
    bytes,
    heldBytes: bytes.filter((b) => b.held).map((b) => b.byte),
    holders,
    uses: PERMISSIONS.filter((p) => holders.some((h) => h.uses.includes(p.name))).map((p) => p.name),
    refusesToShare: PERMISSIONS.filter((p) => holders.some((h) => h.refusesToShare.includes(p.name))).map((p) => p.name),
    verdict: '',
  };
  result.verdict = verdictOf(result);
  return result;
}

function uniqueHolders(records: LockRecord[]): LockHolder[] {
  const seen = new Map<string, LockHolder>();
  for (const r of records) {
    const h: LockHolder = { pid: r.pid, command: r.command, fd: r.fd, kind: r.kind };
    if (!seen.has(holderKey(h))) seen.set(holderKey(h), h);
  }
  return [...seen.values()];
}

function imageHolders(bytes: ByteState[]): ImageHolder[] {
  const byKey = new Map<string, ImageHolder>();
  for (const b of bytes) {
    for (const h of b.holders) {
      const key = holderKey(h);
      let holder = byKey.get(key);
      if (!holder) byKey.set(key, (holder = { ...h, uses: [], refusesToShare: [], bytes: [] }));
      holder.bytes.push(b.byte);
      (b.role === 'use' ? holder.uses : holder.refusesToShare).push(b.permission);
    }
  }
  return [...byKey.values()].sort((a, b) => (a.pid ?? Infinity) - (b.pid ?? Infinity) || (a.fd ?? -1) - (b.fd ?? -1));
}
