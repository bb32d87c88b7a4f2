/**
 * Who holds byte-range locks on an image, from /proc.
 *
 * Neither F_OFD_GETLK nor /proc/locks names the owner of an OFD lock (both
 * say pid -1), but /proc/PID/fdinfo/FD lists, in `lock:` lines, the locks
 * taken through that open file description. /proc/locks still gives the pid
 * of POSIX locks, which is all we can learn when fdinfo is unreadable.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import type { LockApi } from './fcntl.ts';
import type { ImageIdentity } from './imageFile.ts';

/** One lock line, as /proc/locks and /proc/PID/fdinfo/FD print it. */
export interface LockLine {
  kind: LockApi;
  type: 'read' | 'write';
  /** -1 for OFD locks. */
  pid: number;
  major: number;
  minor: number;
  inode: bigint;
  start: number;
  /** Inclusive; Infinity for EOF. */
  end: number;
}

/** A process (or, when unknown, just a lock) holding some of an image's bytes. */
export interface LockHolder {
  /** null: the lock exists but its owner is not visible to us (another user's process, another pid namespace). */
  pid: number | null;
  command: string | null;
  fd: number | null;
  kind: LockApi;
}

export interface LockRecord extends LockHolder {
  type: 'read' | 'write';
  start: number;
  end: number;
}

// "1: OFDLCK ADVISORY  READ -1 fe:00:2203846 100 101"; waiters carry "->" and are not holders.
const LINE = /^\d+:\s+(POSIX|OFDLCK)\s+\S+\s+(READ|WRITE)\s+(-?\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s+(\d+)\s+(\d+|EOF)\s*$/;

export function parseLockLine(line: string): LockLine | undefined {
  const m = LINE.exec(line.replace(/^lock:\s*/, '').trim());
  if (!m) return undefined;
  return {
    kind: m[1] === 'OFDLCK' ? 'OFD' : 'POSIX',
    type: m[2] === 'READ' ? 'read' : 'write',
    pid: Number(m[3]),
    major: parseInt(m[4], 16),
    minor: parseInt(m[5], 16),
    inode: BigInt(m[6]),
    start: Number(m[7]),
    end: m[8] === 'EOF' ? Infinity : Number(m[8]),
  };
}

function sameInode(line: LockLine, image: ImageIdentity): boolean {
  return line.inode === image.ino && line.major === image.major && line.minor === image.minor;
}

/**
 * The kernel prints the superblock's device, which is not always what stat()
 * reports (btrfs subvolumes, overlayfs): when only the inode number matches,
 * ask the fd itself.
 */
function fdIsImage(pid: number, fd: number, image: ImageIdentity): boolean {
  try {
    const st = statSync(`/proc/${pid}/fd/${fd}`, { bigint: true });
    return st.dev === image.dev && st.ino === image.ino;
  } catch {
    return false;
  }
}

// /proc files are tiny and never block: synchronous reads are several times faster here than the thread pool's round trips.
function readLines(path: string): string[] | undefined {
  try {
    return readFileSync(path, 'utf8').split('\n');
  } catch {
    return undefined;
  }
}

/** /proc/PID/comm is cut at 15 bytes ("qemu-system-x86"): take argv[0]'s base name when it extends it. */
export function commandName(pid: number): string | null {
  const comm = readLines(`/proc/${pid}/comm`)?.[0];
  if (comm === undefined) return null;
  if (Buffer.byteLength(comm) < 15) return comm;
  for (const source of [`/proc/${pid}/exe`, `/proc/${pid}/cmdline`]) {
    try {
      const full = source.endsWith('exe') ? readlinkSync(source) : readFileSync(source, 'utf8').split('\0')[0];
      const base = full.replace(/ \(deleted\)$/, '').split('/').pop() ?? '';
      if (base.startsWith(comm)) return base;
    } catch {
      // Not ours to read (exe needs ptrace access): keep trying, then settle for comm.
    }
  }
  return comm;
}

/** The locks on the image that /proc/PID/fdinfo shows for one process's open files. */
function locksSeenThrough(pid: number, image: ImageIdentity): LockRecord[] {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return []; // gone, or another user's process
  }
  const found: LockRecord[] = [];
  for (const fdText of fds) {
    const lines = readLines(`/proc/${pid}/fdinfo/${fdText}`);
    if (!lines) continue;
    const fd = Number(fdText);
    for (const text of lines) {
      if (!text.startsWith('lock:')) continue;
      const line = parseLockLine(text);
      if (!line || line.inode !== image.ino) continue;
      if (!sameInode(line, image) && !fdIsImage(pid, fd, image)) continue;
      // A POSIX lock belongs to the process that took it (its tgid is on the line); an OFD lock to the open file, seen from every process sharing it.
      const owner = line.kind === 'POSIX' && line.pid > 0 ? line.pid : pid;
      found.push({ pid: owner, command: null, fd, kind: line.kind, type: line.type, start: line.start, end: line.end });
    }
  }
  return found;
}

function scanFdinfo(image: ImageIdentity): LockRecord[] {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return [];
  }
  return pids.flatMap((pid) => locksSeenThrough(Number(pid), image));
}

/**
 * Every POSIX and OFD lock on the image, with the pid, command and fd that
 * hold it where /proc lets us see them. Skips the fdinfo scan when
 * /proc/locks shows nothing on the inode.
 */
export async function findLockRecords(image: ImageIdentity): Promise<LockRecord[]> {
  const global = (readLines('/proc/locks') ?? [])
    .map(parseLockLine)
    .filter((l): l is LockLine => l !== undefined && l.inode === image.ino);
  if (global.length === 0) return [];
  const records = scanFdinfo(image);
  // A lock /proc/locks shows on this very inode that no fdinfo line accounted
  // for (we may not read other users' fdinfo): POSIX ones still have a pid,
  // OFD ones stay anonymous.
  const used = new Set<LockRecord>();
  for (const line of global) {
    if (!sameInode(line, image)) continue;
    const match = records.find(
      (r) => !used.has(r) && r.kind === line.kind && r.type === line.type && r.start === line.start && r.end === line.end && (line.kind === 'OFD' || r.pid === line.pid),
    );
    if (match) {
      used.add(match);
      continue;
    }
    const anonymous: LockRecord = { pid: line.pid > 0 ? line.pid : null, command: null, fd: null, kind: line.kind, type: line.type, start: line.start, end: line.end };
    records.push(anonymous);
    used.add(anonymous);
  }
  const names = new Map<number, string | null>();
  for (const r of records) {
    if (r.pid === null) continue;
    if (!names.has(r.pid)) names.set(r.pid, commandName(r.pid));
    r.command = names.get(r.pid)!;
  }
  records.sort((a, b) => (a.pid ?? Infinity) - (b.pid ?? Infinity) || (a.fd ?? -1) - (b.fd ?? -1) || a.start - b.start);
  return records;
}

export function covers(record: { start: number; end: number }, byte: number): boolean {
  return record.start <= byte && byte <= record.end;
}
