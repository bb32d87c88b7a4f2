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
import { GuestlensError } from '@guestlens/block';
import type { ImageOpener, ImageOpenOptions, ImageSpec, OpenedImage } from './imageOpener.ts';

export const openImageWithQemu: ImageOpener = async (image, options) => {
  const { openWithQemu, openNetworkWithQemu, QEMU_FORMATS } = await import('@guestlens/nbd');
  if (image.network) {
    const format = image.format ?? 'raw';
    // QEMU would follow what a qcow2 (or other) network disk names, and no directory judges that: only --backing allow reads them.
    if (format !== 'raw' && (options.backing ?? 'allow') !== 'allow') {
      throw new BackingChainError(image.path, `is a ${format} network disk, whose backing files QEMU would open without a directory to judge them by; --backing ${options.backing} refuses it (give --backing allow to read it)`);
    }
    const source = await openNetworkWithQemu(image.network, { format, name: image.path, ...(image.secret === undefined ? {} : { secret: image.secret }) });
    // No path: a network disk has no file to watch for liveness.
    return { source, format, close: () => source.close() };
  }
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

/**
 * QEMU reads an image guestlens has no reader for (`nativeReason` says why
 * not). When QEMU can't either, the error says both, so a broken qed header
 * is not reported as only QEMU's complaint; a missing passphrase stays as it
 * is (it says what to do).
 */
export async function openInsteadWithQemu(image: ImageSpec, options: ImageOpenOptions, nativeReason: string): Promise<OpenedImage> {
  try {
    return await openImageWithQemu(image, options);
  } catch (err) {
    if (!(err instanceof GuestlensError) || err.code === 'EKEYREJECTED' || err instanceof BackingChainError) throw err;
    const qemu = err.message.startsWith(`${image.path}: `) ? err.message.slice(image.path.length + 2) : err.message;
    throw new GuestOpenError(image.path, `is ${nativeReason}; and QEMU cannot read it either: ${qemu}`);
  }
}

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
