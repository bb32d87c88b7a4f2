/**
 * openWithQemu: an image in any format QEMU reads, as an NbdSource, through a
 * private qemu-storage-daemon.
 *
 * The daemon opens the image read-only without taking locks (a running VM may
 * hold it), with the format driver named explicitly (never probed by the
 * daemon), and exports it read-only on a unix socket in a private 0700
 * directory. A LUKS passphrase goes to QEMU in a 0600 file in that directory,
 * never on a command line.
 *
 * The daemon and the directory never outlive their NbdSource: close() stops
 * and removes them, a failed start does too, and so do process exit,
 * SIGINT, SIGTERM and SIGHUP (the hooks exist while some daemon runs; when
 * ours is the only handler of the signal, we clean up and re-raise it so the
 * exit status stays right). For SIGKILL of this process, each daemon has a
 * watchdog: a tiny shell that blocks reading a pipe from us and, when the
 * pipe closes without a word (we died), terminates the daemon.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync, accessSync, constants as fsConstants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { NbdSource } from './nbdSource.ts';
import { ImageAccessError, NbdError, PassphraseError, QemuDaemonError } from './errors.ts';
import { networkBlockdev, networkDiskName, type NetworkDisk } from './networkDisk.ts';

export interface OpenWithQemuOptions {
  /** QEMU format driver (qcow2, qed, parallels, dmg, cloop, luks, raw, ...). Default: what `qemu-img info` says. */
  format?: string;
  /** How messages name the source (default: the image path as given). */
  name?: string;
  /** The LUKS passphrase (format luks, or qcow2 with LUKS encryption). */
  secret?: string;
  /** Deadline for starting the daemon and the NBD handshake (default 30 s). */
  timeoutMs?: number;
}

/** Prefix of the private directories (every guestlens temporary name starts with "guestlens-"). */
export const DAEMON_DIR_PREFIX = 'guestlens-nbd-';

/** Format drivers we let QEMU open an image with: formats only, no protocol drivers. */
export const QEMU_FORMATS = ['raw', 'qcow2', 'qcow', 'qed', 'vdi', 'vmdk', 'vhdx', 'vpc', 'parallels', 'dmg', 'cloop', 'bochs', 'luks'] as const;

const DAEMON = 'qemu-storage-daemon';
const QEMU_IMG = 'qemu-img';
const MAX_STDERR = 64 * 1024;
/** sun_path is 108 bytes on Linux, with the terminating NUL. */
const MAX_SOCKET_PATH = 107;

/**
 * Blocks on its stdin (our pipe). We never write to it, so the read ends only
 * when the pipe closes: this process is gone. Then it terminates the daemon,
 * checking first that the pid is still the daemon (its command line names our
 * socket), escalating to SIGKILL after 2 s.
 */
const WATCHDOG = [
  'read -r _',
  'i=0',
  'while grep -qF -- "$2" "/proc/$1/cmdline" 2>/dev/null; do',
  '  if [ $i -eq 0 ]; then kill -TERM "$1" 2>/dev/null; elif [ $i -ge 20 ]; then kill -KILL "$1" 2>/dev/null; fi',
  '  i=$((i+1)); sleep 0.1',
  'done',
].join('\n');

interface Daemon {
  child: ChildProcess;
  watchdog: ChildProcess | undefined;
  dir: string;
  socket: string;
  stderr: () => string;
  exited: Promise<void>;
}

// ---- Exit-path cleanup: one set of hooks for every daemon of this process. ----

const live = new Set<Daemon>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type Sig = (typeof SIGNALS)[number];
let installed = false;
const handlers: Record<Sig, () => void> = {
  SIGINT: () => onSignal('SIGINT'),
  SIGTERM: () => onSignal('SIGTERM'),
  SIGHUP: () => onSignal('SIGHUP'),
};

function onSignal(sig: Sig): void {
  stopAllSync();
  const othersListen = process.listenerCount(sig) > 1;
  uninstall();
  if (!othersListen) process.kill(process.pid, sig);
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const s of SIGNALS) process.on(s, handlers[s]);
  process.on('exit', stopAllSync);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const s of SIGNALS) process.removeListener(s, handlers[s]);
  process.removeListener('exit', stopAllSync);
}

/** The process is going away: terminate every daemon and remove its directory, synchronously. The watchdogs stay to make sure. */
function stopAllSync(): void {
  for (const d of live) {
    try { d.child.kill('SIGTERM'); } catch { /* already gone */ }
    try { rmSync(d.dir, { recursive: true, force: true }); } catch { /* nothing more to do while exiting */ }
  }
  live.clear();
}

/** Stop one daemon (SIGTERM, SIGKILL after 5 s), its watchdog, and remove its directory. */
async function stopDaemon(d: Daemon): Promise<void> {
  try { d.watchdog?.kill('SIGKILL'); } catch { /* gone */ }
  if (d.child.exitCode === null && d.child.signalCode === null) {
    d.child.ref(); // Keep the process alive until the daemon is gone.
    d.child.kill('SIGTERM');
    const t = setTimeout(() => d.child.kill('SIGKILL'), 5000);
    await d.exited;
    clearTimeout(t);
  }
  rmSync(d.dir, { recursive: true, force: true });
  live.delete(d);
  if (live.size === 0) uninstall();
}

/** Daemons of this process still running (pid and socket), for diagnostics and tests. */
export function liveDaemons(): Array<{ pid: number; socket: string; dir: string }> {
  return [...live].map((d) => ({ pid: d.child.pid ?? -1, socket: d.socket, dir: d.dir }));
}

// ---- Starting. ----

/** QEMU's option syntax: a comma inside a value is written twice. */
function qemuValue(s: string): string {
  return s.replace(/,/g, ',,');
}

/** QEMU's message, without the program name and the echo of the option it complained about. */
function qemuMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^qemu-(storage-daemon|img): /, '').replace(/^--(blockdev|object|nbd-server|export) .*?: /, '').trim())
    .filter(Boolean);
  return lines.join('; ') || 'QEMU gave no reason';
}

function checkImage(image: string, path: string): { blockDevice: boolean } {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new ImageAccessError(image, 'no such file; check the path', 'ENOENT');
    if (e.code === 'EACCES') throw new ImageAccessError(image, 'permission denied; run as a user who can read the image', 'EACCES');
    throw new ImageAccessError(image, `cannot stat it: ${e.code ?? e.message}`, e.code ?? 'EIO');
  }
  if (st.isDirectory()) throw new ImageAccessError(image, 'is a directory, not a disk image', 'EISDIR');
  if (!st.isFile() && !st.isBlockDevice()) throw new ImageAccessError(image, 'is neither a regular file nor a block device', 'EINVAL');
  try {
    accessSync(path, fsConstants.R_OK);
  } catch {
    throw new ImageAccessError(image, 'permission denied; run as a user who can read the image', 'EACCES');
  }
  return { blockDevice: st.isBlockDevice() };
}

function missingTool(image: string, tool: string, pkg: string): QemuDaemonError {
  return new QemuDaemonError(image, `${tool} was not found on PATH; guestlens needs it to read this format: install the Debian package ${pkg}`, 'ENOENT', { tool });
}

/** The format `qemu-img info` reports (its header probe; raw when no header matches). */
export function detectFormat(image: string, path: string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(QEMU_IMG, ['info', '-U', '--output=json', path], { timeout: timeoutMs, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException & { killed?: boolean };
        if (e.code === 'ENOENT') return reject(missingTool(image, QEMU_IMG, 'qemu-utils'));
        if (e.killed) return reject(new QemuDaemonError(image, `qemu-img info did not finish within ${timeoutMs} ms`, 'ETIMEDOUT'));
        return reject(new ImageAccessError(image, `QEMU cannot read it: ${qemuMessage(String(stderr))}`, 'EIO'));
      }
      try {
        const format = (JSON.parse(String(stdout)) as { format?: unknown }).format;
        if (typeof format !== 'string') throw new Error('no format');
        resolvePromise(format);
      } catch {
        reject(new QemuDaemonError(image, 'qemu-img info gave output guestlens cannot parse; give the format explicitly'));
      }
    });
  });
}

/** Why the daemon failed to start, from what it wrote. */
function startError(image: string, format: string, stderr: string, secret: boolean): NbdError {
  const msg = qemuMessage(stderr);
  if (/invalid password|cannot unlock any keyslot/i.test(msg)) {
    return new PassphraseError(image, `the LUKS passphrase is wrong (QEMU: ${msg}); give the right one`);
  }
  if (/key-secret/i.test(msg) && !secret) {
    return new PassphraseError(image, `the image is encrypted and needs a passphrase: give --key-file FILE (QEMU: ${msg})`);
  }
  const protocolDriver = /Unknown driver '(nbd|iscsi|rbd|gluster|https?|ftps?|ssh|nfs)'/i.exec(msg);
  if (protocolDriver) return new QemuDaemonError(image, `this QEMU has no ${protocolDriver[1]} driver: install the Debian package qemu-block-extra (QEMU: ${msg})`, 'ENOENT', { qemu: msg });
  if (/connection refused|could not resolve|name or service not known|no route to host|network is unreachable|timed out|failed to connect|couldn't connect|failed to mount nfs|_service failed/i.test(msg)) {
    return new QemuDaemonError(image, `QEMU cannot reach it: ${msg}; check the host, the port and that the server is running`, 'ECONNREFUSED', { qemu: msg });
  }
  if (/no such file/i.test(msg)) return new ImageAccessError(image, `QEMU cannot open it: ${msg}`, 'ENOENT');
  if (/permission denied/i.test(msg)) return new ImageAccessError(image, `QEMU cannot open it: ${msg}`, 'EACCES');
  if (/unknown driver|not in .* format|not a .* image|image is not|bad magic|invalid|unsupported/i.test(msg)) {
    return new QemuDaemonError(image, `QEMU cannot open it as ${format}: ${msg}; check the format (qemu-img info ${image})`, 'EINVAL', { format, qemu: msg });
  }
  return new QemuDaemonError(image, `qemu-storage-daemon could not open it as ${format}: ${msg}`, 'EQEMU', { format, qemu: msg });
}

/**
 * Open `imagePath` read-only through a private qemu-storage-daemon and
 * return it as an NbdSource; its close() also stops the daemon.
 */
export async function openWithQemu(imagePath: string, options: OpenWithQemuOptions = {}): Promise<NbdSource> {
  const image = options.name ?? imagePath;
  const path = resolve(imagePath);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const { blockDevice } = checkImage(image, path);
  const format = options.format ?? (await detectFormat(image, path, timeoutMs));
  // Locking off: a running VM may hold the image, and we only read.
  const protocol = { driver: blockDevice ? 'host_device' : 'file', filename: path, locking: 'off' };
  return startDaemon(image, protocol, format, { ...options, timeoutMs });
}

/**
 * Open a network disk (libvirt's `<disk type='network'>`) read-only through
 * QEMU's driver for its protocol, in a private qemu-storage-daemon; `format`
 * is what libvirt's `<driver type=...>` says (raw when absent).
 */
export async function openNetworkWithQemu(disk: NetworkDisk, options: OpenWithQemuOptions = {}): Promise<NbdSource> {
  const image = options.name ?? networkDiskName(disk);
  const protocol = networkBlockdev(disk, image);
  return startDaemon(image, protocol, options.format ?? 'raw', { ...options, timeoutMs: options.timeoutMs ?? 30_000 });
}

/** The daemon's command line: the protocol node, the format node on it, and a read-only NBD export of the format node on `socket`. */
export function daemonArgs(protocol: Record<string, unknown>, format: string, socket: string, secret?: { file: string; key: string }): string[] {
  const args: string[] = [];
  const formatNode: Record<string, unknown> = { driver: format, 'node-name': 'fmt0', file: 'proto0', 'read-only': true };
  if (secret) {
    args.push('--object', `secret,id=sec0,format=raw,file=${qemuValue(secret.file)}`);
    // 'encrypt.format=luks,encrypt.key-secret' for qcow2: a nested object in JSON.
    if (secret.key === 'key-secret') formatNode['key-secret'] = 'sec0';
    else formatNode.encrypt = { format: 'luks', 'key-secret': 'sec0' };
  }
  // JSON, not key=value: no comma escaping, and nested options (server.type, ...) as QAPI has them.
  args.push(
    '--blockdev', JSON.stringify({ ...protocol, 'node-name': 'proto0', 'read-only': true }),
    '--blockdev', JSON.stringify(formatNode),
    '--nbd-server', `addr.type=unix,addr.path=${qemuValue(socket)}`,
    '--export', 'type=nbd,id=exp0,node-name=fmt0,name=image,writable=off',
  );
  return args;
}

async function startDaemon(image: string, protocol: Record<string, unknown>, format: string, options: OpenWithQemuOptions & { timeoutMs: number }): Promise<NbdSource> {
  const { timeoutMs } = options;
  const deadline = Date.now() + timeoutMs;
  if (!(QEMU_FORMATS as readonly string[]).includes(format)) {
    throw new QemuDaemonError(image, `format "${format}" is not one guestlens opens through QEMU; use one of ${QEMU_FORMATS.join(', ')}`, 'EINVAL', { format });
  }
  // LUKS images, and qcow2 with LUKS encryption (QEMU no longer opens the old AES kind for reading).
  const secretKey = format === 'luks' ? 'key-secret' : format === 'qcow2' ? 'encrypt.key-secret' : undefined;
  if (options.secret !== undefined && !secretKey) {
    throw new QemuDaemonError(image, `a passphrase was given, but format ${format} has no encryption guestlens can unlock (only luks and qcow2)`, 'EINVAL');
  }

  let dir: string;
  try {
    dir = mkdtempSync(join(tmpdir(), DAEMON_DIR_PREFIX));
  } catch (err) {
    throw new QemuDaemonError(image, `cannot create a private directory in ${tmpdir()}: ${(err as NodeJS.ErrnoException).code}; point TMPDIR at a writable directory`, 'EIO');
  }
  const socket = join(dir, 'nbd.sock');
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    rmSync(dir, { recursive: true, force: true });
    throw new QemuDaemonError(image, `the socket path ${socket} is too long for a unix socket; point TMPDIR at a shorter directory`, 'ENAMETOOLONG');
  }

  let secret: { file: string; key: string } | undefined;
  if (options.secret !== undefined && secretKey) {
    const secretFile = join(dir, 'secret');
    try {
      writeFileSync(secretFile, options.secret, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw new QemuDaemonError(image, `cannot write the passphrase file in ${dir}: ${(err as NodeJS.ErrnoException).code}`, 'EIO');
    }
    secret = { file: secretFile, key: secretKey };
  }
  const args = daemonArgs(protocol, format, socket, secret);

  let child: ChildProcess;
  try {
    child = spawn(DAEMON, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new QemuDaemonError(image, `cannot start ${DAEMON}: ${(err as Error).message}`);
  }
  let stderrText = '';
  (child.stderr as Readable).on('data', (chunk: Buffer) => {
    stderrText = (stderrText + chunk.toString('utf8')).slice(-MAX_STDERR);
  });
  let spawnError: NodeJS.ErrnoException | undefined;
  const exited = new Promise<void>((r) => {
    child.once('error', (err: NodeJS.ErrnoException) => { spawnError = err; r(); });
    child.once('close', () => r());
  });
  const daemon: Daemon = { child, watchdog: undefined, dir, socket, stderr: () => stderrText, exited };
  live.add(daemon);
  install();

  const fail = async (err: Error): Promise<never> => {
    await stopDaemon(daemon);
    throw err;
  };

  if (child.pid !== undefined) {
    try {
      const wd = spawn('sh', ['-c', WATCHDOG, 'guestlens-nbd-watchdog', String(child.pid), socket], { stdio: ['pipe', 'ignore', 'ignore'] });
      wd.on('error', () => { /* no sh: SIGKILL of this process is then not covered */ });
      daemon.watchdog = wd;
      wd.unref();
      (wd.stdin as Writable & { unref?: () => void }).unref?.();
    } catch {
      // Same: without the watchdog only SIGKILL of this process leaves the daemon.
    }
  }

  // Ready when the socket exists; an exit before that is a failed open.
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  while (!existsSync(socket)) {
    if (exitedEarly) {
      if (spawnError?.code === 'ENOENT') return fail(missingTool(image, DAEMON, 'qemu-system-common'));
      if (spawnError) return fail(new QemuDaemonError(image, `cannot start ${DAEMON}: ${spawnError.message}`));
      return fail(startError(image, format, stderrText, options.secret !== undefined));
    }
    if (Date.now() > deadline) return fail(new QemuDaemonError(image, `${DAEMON} did not open the image within ${timeoutMs} ms`, 'ETIMEDOUT'));
    await new Promise((r) => setTimeout(r, 20));
  }

  let source: NbdSource;
  try {
    source = await NbdSource.connect({
      socketPath: socket,
      exportName: 'image',
      name: image,
      handshakeTimeoutMs: Math.max(1000, deadline - Date.now()),
      onClose: () => stopDaemon(daemon),
    });
  } catch (err) {
    // The daemon may have died while we connected: its message says more than ours.
    await new Promise((r) => setTimeout(r, 50));
    if (exitedEarly && stderrText.trim()) return fail(startError(image, format, stderrText, options.secret !== undefined));
    return fail(err as Error);
  }
  // The daemon and its pipe must not keep this process alive: an unclosed source ends with the process (the exit hook stops it).
  child.unref();
  (child.stderr as Readable & { unref?: () => void }).unref?.();
  return source;
}
