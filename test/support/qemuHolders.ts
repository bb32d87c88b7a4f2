/**
 * Real QEMU processes holding an image, the way users run them: qemu-io kept
 * open on a stdin pipe, qemu-storage-daemon and qemu-nbd exporting it on a
 * unix socket, qemu-system-x86_64 paused with the image as a drive. Each is
 * started tracked (stopped by pid after the test) and returned only once it
 * has taken its locks, told by the tool itself, never by sleeping.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startTracked, stop, waitFor, type Tracked } from './processes.ts';
import { scratchDir } from './scratch.ts';

export type HolderKind =
  | 'qemu-io'
  | 'qemu-io -r'
  | 'qemu-io -r -U'
  | 'qsd writable'
  | 'qsd read-only'
  | 'qemu-nbd'
  | 'qemu-nbd --read-only'
  | 'qemu-system'
  | 'qemu-system readonly=on';

export const HOLDER_KINDS: HolderKind[] = ['qemu-io', 'qemu-io -r', 'qemu-io -r -U', 'qsd writable', 'qsd read-only', 'qemu-nbd', 'qemu-nbd --read-only', 'qemu-system', 'qemu-system readonly=on'];

export interface QemuHolder {
  kind: HolderKind;
  child: Tracked;
  pid: number;
  /** The program's name, as `locks` should print it. */
  command: string;
  /** Everything the process wrote so far (stdout and stderr). */
  output(): string;
  stop(): Promise<void>;
  /** The NBD socket of holders that export one (qemu-storage-daemon, qemu-nbd). */
  socket?: string;
}

function collect(child: Tracked): () => string {
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return () => text;
}

async function ready(child: Tracked, output: () => string, what: string, check: () => boolean): Promise<void> {
  await waitFor(what, () => {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what}: the process exited early:\n${output()}`);
    return check();
  });
}

/** Open `image` (format `format`) as `kind` does and wait until the open is complete. */
export async function startHolder(kind: HolderKind, image: string, format: 'qcow2' | 'raw'): Promise<QemuHolder> {
  const dir = scratchDir('holder');
  const sock = join(dir, 'sock');
  let file: string;
  let args: string[];
  let command: string;
  let readiness: 'qemu-io' | 'qmp' | 'pidfile';
  switch (kind) {
    case 'qemu-io':
    case 'qemu-io -r':
    case 'qemu-io -r -U':
      file = command = 'qemu-io';
      args = [...kind.split(' ').slice(1), '-f', format, image];
      readiness = 'qemu-io';
      break;
    case 'qsd writable':
    case 'qsd read-only': {
      const ro = kind === 'qsd read-only' ? ',read-only=on' : '';
      file = command = 'qemu-storage-daemon';
      args = [
        '--blockdev', `driver=file,node-name=file0,filename=${image}${ro}`,
        '--blockdev', `driver=${format},node-name=fmt0,file=file0${ro}`,
        '--nbd-server', `addr.type=unix,addr.path=${sock}`,
        '--export', `type=nbd,id=exp0,node-name=fmt0,writable=${ro ? 'off' : 'on'}`,
        '--chardev', 'stdio,id=mon0',
        '--monitor', 'chardev=mon0',
      ];
      readiness = 'qmp';
      break;
    }
    case 'qemu-nbd':
    case 'qemu-nbd --read-only':
      file = command = 'qemu-nbd';
      args = [...(kind === 'qemu-nbd' ? [] : ['--read-only']), '-f', format, '-k', sock, '--pid-file', join(dir, 'pid'), image];
      readiness = 'pidfile';
      break;
    case 'qemu-system':
    case 'qemu-system readonly=on':
      file = command = 'qemu-system-x86_64';
      args = [
        '-machine', 'none', '-nodefaults', '-display', 'none', '-S',
        '-drive', `file=${image},format=${format},if=none,id=drive0${kind === 'qemu-system' ? '' : ',readonly=on'}`,
        '-chardev', 'stdio,id=mon0', '-mon', 'chardev=mon0,mode=control',
      ];
      readiness = 'qmp';
      break;
  }
  if (image.includes(',') && (kind.startsWith('qsd') || kind.startsWith('qemu-system'))) {
    throw new Error(`startHolder: ${kind} needs commas in "${image}" doubled; use another name`);
  }
  const child = startTracked(file, args, { input: true });
  const output = collect(child);
  const holder: QemuHolder = { kind, child, pid: child.pid, command, output, stop: () => stop(child), socket: kind.startsWith('qsd') || kind.startsWith('qemu-nbd') ? sock : undefined };
  if (readiness === 'qemu-io') {
    // qemu-io reads commands only once the image is open (locks taken).
    child.stdin!.write('length\n');
    await ready(child, output, `${kind} to open ${image}`, () => /\d/.test(output()));
  } else if (readiness === 'qmp') {
    // The monitor answers only from the main loop, after every option (drive, export) was processed.
    child.stdin!.write('{"execute":"qmp_capabilities"}\n');
    await ready(child, output, `${kind} to answer QMP`, () => output().includes('"return"'));
  } else {
    // qemu-nbd writes its pid file once the export exists.
    await ready(child, output, `${kind} to write its pid file`, () => existsSync(join(dir, 'pid')));
  }
  return holder;
}

/** The bytes each holder locks (spec/qemu-locking.md, checked on QEMU 7.2.22). */
export const EXPECTED_BYTES: Record<HolderKind, { qcow2: number[]; raw: number[] }> = {
  'qemu-io': { qcow2: [100, 101, 103, 201, 203], raw: [100, 101] },
  'qemu-io -r': { qcow2: [100, 201, 203], raw: [100] },
  'qemu-io -r -U': { qcow2: [100], raw: [100] },
  'qsd writable': { qcow2: [100, 101, 103, 201, 203], raw: [100, 101, 203] },
  'qsd read-only': { qcow2: [100, 201, 203], raw: [100, 203] },
  'qemu-nbd': { qcow2: [100, 101, 103, 201, 203], raw: [100, 101, 203] },
  'qemu-nbd --read-only': { qcow2: [100, 201, 203], raw: [100, 203] },
  'qemu-system': { qcow2: [100, 101, 103, 201, 203], raw: [100] },
  'qemu-system readonly=on': { qcow2: [100, 201, 203], raw: [100] },
};
