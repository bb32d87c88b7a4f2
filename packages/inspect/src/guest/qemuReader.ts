/**
 * Reading an image through QEMU: qemu-storage-daemon opens it read-only
 * (locking off: a running VM may hold it) and exports it over NBD on a
 * private socket (@guestlens/nbd); the guest layers above read that like any
 * block source. For the formats guestlens has no reader for (qed, parallels,
 * dmg, cloop, bochs, qcow v1, LUKS with a passphrase) and to compare a native
 * reader with QEMU's (`--reader qemu`).
 * QEMU follows what an image names (backing files) itself, so the backing
 * policy is applied first: through the overlay package's chain walk for the
 * formats it knows, and from `qemu-img info -U` (which opens that one file)
 * for the rest.
 */
import { inspectChain, isOverlayFormat, BackingChainError } from '@guestlens/overlay';
import { probeFormatFile } from '@guestlens/qcow2-js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { dirname, resolve } from 'node:path';
import { GuestOpenError } from '../errors.ts';
import type { ImageOpener } from './imageOpener.ts';

export const openImageWithQemu: ImageOpener = async (image, options) => {
  const { openWithQemu, QEMU_FORMATS } = await import('@guestlens/nbd');
  const format = image.format ?? (await probeFormatFile(image.path));
  if (!(QEMU_FORMATS as readonly string[]).includes(format)) throw new GuestOpenError(image.path, `is in ${format} format, which QEMU's reader does not open here (it opens ${QEMU_FORMATS.join(', ')})`);
  const policy = options.backing ?? 'allow';
  if (policy !== 'allow') {
    if (isOverlayFormat(format)) await inspectChain(image.path, { format, backing: policy });
    else await refuseNamedFiles(image.path, format, policy);
  }
  const source = await openWithQemu(image.path, { format, name: image.path, ...(image.secret === undefined ? {} : { secret: image.secret }) });
  return { source, format, path: image.path, close: () => source.close() };
};

/** qed and qcow v1 name backing files: judged here from qemu-img info -U (it opens only this file). */
async function refuseNamedFiles(path: string, format: string, policy: 'same-dir' | 'none'): Promise<void> {
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)('qemu-img', ['info', '-U', '-f', format, '--output=json', path], { env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 16 << 20 }));
  } catch (err) {
    throw new GuestOpenError(path, `qemu-img info -f ${format} failed: ${String((err as { stderr?: string }).stderr ?? (err as Error).message).trim()}`);
  }
  const info = JSON.parse(stdout) as { 'full-backing-filename'?: string; 'backing-filename'?: string };
  const named = info['full-backing-filename'] ?? info['backing-filename'];
  if (named === undefined) return;
  const target = resolve(dirname(resolve(path)), named);
  if (policy === 'none' || dirname(target) !== dirname(resolve(path))) {
    throw new BackingChainError(path, `names the backing file ${named}, which --backing ${policy} refuses`);
  }
}
