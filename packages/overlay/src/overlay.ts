/**
 * A throw-away qcow2 overlay over a guest image: QEMU tools (and our qcow2
 * reader) read the image through it while a VM holds it read-write, because
 * the overlay's backing reference opens the image with locking off. Nothing
 * is ever written to the image; writes, if any tool makes them, land in the
 * overlay, which is deleted afterwards.
 */
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { backingJson, MAX_BACKING_NAME_BYTES } from './backingReference.ts';
import { walkChain, type ChainEntry } from './chain.ts';
import { ImageAccessError, OverlayError, QemuImgError } from './errors.ts';
import { resolveImage } from './imageTarget.ts';
import { BACKING_POLICIES, BackingPolicyCheck, isBackingPolicy, type BackingPolicyName as BackingPolicy } from '@guestlens/qcow2-js';
import { makePrivateDir, release, removePrivateDir } from './privateDir.ts';
import { ensureQemuImg, runQemuImg } from './qemuImg.ts';

export interface OverlayOptions {
  /** The image's format; when absent it is detected by magic, and anything unrecognised is raw. */
  format?: string;
  /** Where the overlay's private directory is made (default: the system temporary directory). */
  dir?: string;
  /** Which files the image may name besides itself (default 'allow'). */
  backing?: BackingPolicy;
}

export interface Overlay {
  /** The overlay file: hand it to qemu-io, qemu-img, qemu-nbd, or the qcow2 reader. */
  path: string;
  /** The private 0700 directory that holds it (removed by close). */
  dir: string;
  /** The guest image, as the caller named it. */
  image: string;
  /** The image's format: the backing format of the overlay. */
  format: string;
  /** The backing reference stored in the overlay's header (`json:{...}`). */
  backing: string;
  /** The image's own chain: the image (depth 0), its backing file, ... */
  chain: ChainEntry[];
  /** Remove the overlay and its directory. Idempotent. */
  close(): Promise<void>;
  /** Let the overlay outlive this process: it is no longer removed at exit; the caller removes `dir`. */
  keep(): void;
}

export async function createOverlay(image: string, opts: OverlayOptions = {}): Promise<Overlay> {
  const policyName = opts.backing ?? 'allow';
  if (!isBackingPolicy(policyName)) throw new OverlayError(`unknown backing policy "${String(policyName)}"; use one of ${BACKING_POLICIES.join(', ')}`);
  const target = await resolveImage(image, opts.format);
  // The version check runs beside the chain walk and the create instead of
  // before them (it is a process spawn; df's budget is 150 ms). It is still
  // decisive: any failure below first lets a missing or too-old qemu-img
  // explain itself, and no overlay is returned before it has passed.
  const qemuImgReady = ensureQemuImg();
  qemuImgReady.catch(() => {});
  const explained = async (err: unknown): Promise<never> => {
    await qemuImgReady;
    throw err;
  };
  const chain = await walkChain(target, await BackingPolicyCheck.for(policyName, target.path)).catch(explained);
  const backing = backingJson({ format: target.format, filename: target.path, blockDevice: target.blockDevice, dataFile: chain[0].dataFile });
  const backingBytes = Buffer.byteLength(backing);
  if (backingBytes > MAX_BACKING_NAME_BYTES) {
    throw new ImageAccessError(
      image,
      `its path makes a backing reference of ${backingBytes} bytes, and a qcow2 overlay stores at most ${MAX_BACKING_NAME_BYTES}`,
      'reach the image through a shorter path (a symbolic link will do)',
    );
  }

  const dir = await makePrivateDir(opts.dir ?? tmpdir());
  const path = join(dir, overlayFileName(target.path));
  try {
    // -F and the driver inside the json: QEMU never guesses the format.
    const r = await runQemuImg(['create', '-q', '-f', 'qcow2', '-F', target.format, '-b', backing, path]).catch(explained);
    await qemuImgReady;
    if (r.exitCode !== 0) throw new QemuImgError('creating the overlay (qemu-img create)', image, r.stderr);
  } catch (err) {
    await removePrivateDir(dir);
    throw err;
  }
  return {
    path,
    dir,
    image,
    format: target.format,
    backing,
    chain,
    close: () => removePrivateDir(dir),
    keep: () => release(dir),
  };
}

export interface WithOverlayOptions extends Omit<OverlayOptions, 'format'> {
  /** One format for every image, or one per image (undefined entries are detected). */
  format?: string | (string | undefined)[];
}

/**
 * Overlays over the several disks of one guest, for the duration of `fn`.
 * All are removed afterwards, also when `fn` or one of the creations throws.
 */
export async function withOverlay<T>(images: string[], fn: (overlays: Overlay[]) => Promise<T>, opts: WithOverlayOptions = {}): Promise<T> {
  const formatOf = (i: number) => (Array.isArray(opts.format) ? opts.format[i] : opts.format);
  const made = await Promise.allSettled(images.map((image, i) => createOverlay(image, { ...opts, format: formatOf(i) })));
  const overlays = made.flatMap((m) => (m.status === 'fulfilled' ? [m.value] : []));
  try {
    const failed = made.find((m): m is PromiseRejectedResult => m.status === 'rejected');
    if (failed) throw failed.reason;
    return await fn(overlays);
  } finally {
    await Promise.all(overlays.map((o) => o.close()));
  }
}

/** A readable, harmless file name: the image's name, tamed, so `ls` of the temporary directory says what is what. */
function overlayFileName(imagePath: string): string {
  const stem = basename(imagePath)
    .replace(/\.(qcow2|img|raw|vmdk|vdi|vhdx|vhd)$/i, '')
    .replace(/[^A-Za-z0-9._+-]/g, '_')
    .replace(/^[.-]+/, '_')
    .slice(0, 64);
  return `${stem || 'image'}.overlay.qcow2`;
}
