/**
 * How a guest image path becomes a block source. Injectable, so the guest
 * API can be driven by anything that yields a BlockSource. The default goes
 * through a throw-away qcow2 overlay (safe while a VM holds the image: the
 * overlay opens it with locking off) and reads the overlay with its chain
 * through qcow2-js; without the overlay, qcow2-js reads the image directly.
 * Every file is opened read-only either way, and the backing policy (one
 * implementation, qcow2-js's) judges every file an image names.
 */
import type { BlockSource } from '@guestlens/block';
import type { NetworkDisk } from '@guestlens/nbd';
import { createOverlay, UnreadableFormatError } from '@guestlens/overlay';
import { FORMAT_TABLE, formatDriver, openImage, probeFormatFile, readNamedFiles, type BackingPolicyName } from '@guestlens/qcow2-js';
import { GuestOpenError } from '../errors.ts';

export type BackingPolicy = BackingPolicyName;

export interface ImageSpec {
  path: string;
  /** The image format; detected by magic when absent (give 'raw' for untrusted raw images). */
  format?: string;
  /** Logical sector size of this disk, for MBR disks that are not 512 (GPT disks reveal theirs). */
  sectorSize?: number;
  /**
   * Who reads the image format: guestlens's own readers, or QEMU
   * (qemu-storage-daemon over NBD: see qemuReader.ts). By default guestlens's
   * where it has a reader for every layer, QEMU for the rest (qed, parallels,
   * LUKS, ...); 'native' refuses those by name, 'qemu' forces QEMU (to compare).
   */
  reader?: 'native' | 'qemu';
  /** A LUKS passphrase, for encrypted images read by QEMU. */
  secret?: string;
  /**
   * A network disk (libvirt's `<disk type='network'>`): read by QEMU's driver
   * for its protocol; `path` is then only its name (nbd://host/export...).
   */
  network?: NetworkDisk;
}

export interface OpenedImage {
  source: BlockSource;
  /** The format the image was read as. */
  format: string;
  /** The file the user named (for liveness checks: who holds it, did it change); undefined for sources not backed by a file. */
  path?: string;
  /** Release everything opened for this image (file descriptors, the overlay). */
  close(): Promise<void>;
}

export interface ImageOpenOptions {
  /** Read through a throw-away qcow2 overlay whose backing is opened with locking off (safe while a VM runs). */
  overlay: boolean;
  /** Which files an image may name besides itself (backing files, data files); default 'allow'. */
  backing?: BackingPolicy;
  /** Where overlays are made (default: the system temporary directory). */
  overlayDir?: string;
}

export type ImageOpener = (image: ImageSpec, options: ImageOpenOptions) => Promise<OpenedImage>;

export const openImageDefault: ImageOpener = async (image, options) => {
  if (image.reader === 'qemu' || image.network) return openWithQemu(image, options);
  // A format the user named that guestlens has no reader for: QEMU reads it, whichever path would have been taken.
  const given = image.format === undefined ? undefined : givenUnreadable(image.format);
  if (given && image.reader !== 'native') return openInsteadWithQemu(image, options, given);
  if (options.overlay && !(await parentUnreadByQemu(image))) {
    try {
      return await openThroughOverlay(image, options);
    } catch (err) {
      // The overlay refuses a top image in a format guestlens can't read; QEMU reads it instead.
      if (err instanceof UnreadableFormatError && image.reader !== 'native') return openInsteadWithQemu(image, options, err.description);
      throw err;
    }
  }
  const format = image.format;
  if (format !== undefined && !formatDriver(format)?.open) {
    throw new GuestOpenError(image.path, `${format} images are read by QEMU or through an overlay (guestlens reads ${readableFormats()} itself); leave out --reader native or leave the overlay on`);
  }
  const source = await openImage(image.path, { format, backingPolicy: options.backing ?? 'allow' });
  if (!source.readable) {
    await source.close();
    const reason = source.unreadableReason ?? `in ${source.format} format, which guestlens cannot read`;
    if (image.reader !== 'native') return openInsteadWithQemu(image, options, reason);
    throw new GuestOpenError(image.path, `is ${reason}`);
  }
  return { source, format: source.format, path: image.path, close: () => source.close() };
};

/** A format the user named that guestlens has no reader for, said as such (the file may not even be one: QEMU will tell). */
function givenUnreadable(format: string): string | undefined {
  return formatDriver(format)?.unreadable === undefined ? undefined : `given as ${format}, a format guestlens has no reader of its own for (it is read by QEMU unless --reader native is given)`;
}

/** QEMU reads it: asked for, or a network disk. */
async function openWithQemu(image: ImageSpec, options: ImageOpenOptions): Promise<OpenedImage> {
  return (await import('./qemuReader.ts')).openImageWithQemu(image, options);
}

/** QEMU reads it because guestlens has no reader for a layer of it (`reason`). */
async function openInsteadWithQemu(image: ImageSpec, options: ImageOpenOptions, reason: string): Promise<OpenedImage> {
  return (await import('./qemuReader.ts')).openInsteadWithQemu(image, options, reason);
}

/**
 * A differencing VHD or VHDX: QEMU reads the first as if it had no parent and
 * refuses the second, so an overlay (which QEMU reads) cannot show the guest's
 * bytes. guestlens reads such a chain itself; no QEMU can be running it.
 */
async function parentUnreadByQemu(image: ImageSpec): Promise<boolean> {
  let format = image.format;
  try {
    format ??= await probeFormatFile(image.path);
  } catch {
    return false;
  }
  if (format !== 'vpc' && format !== 'vhdx') return false;
  const named = await readNamedFiles(image.path, format).catch(() => undefined);
  return named?.backingUnreadByQemu === true;
}

function readableFormats(): string {
  return FORMAT_TABLE.filter((d) => d.open).map((d) => d.format).join(', ');
}

async function openThroughOverlay(image: ImageSpec, options: ImageOpenOptions): Promise<OpenedImage> {
  // The overlay package detects the format (never guessing raw into anything else) and checks the chain against the policy.
  const overlay = await createOverlay(image.path, { format: image.format, dir: options.overlayDir, backing: options.backing });
  let source: BlockSource | undefined;
  let qemuInstead: string | undefined;
  try {
    // The overlay names the image in a json: backing reference that was checked above; follow it.
    // Errors name the user's image, never the temporary overlay.
    const top = await openImage(overlay.path, { format: 'qcow2', backingPolicy: 'allow', name: image.path });
    source = top;
    const unreadable = top.backing && !top.backing.readable ? top.backing : undefined;
    if (unreadable) {
      qemuInstead = unreadable.unreadableReason ?? `in ${unreadable.format} format, which guestlens cannot read`;
      if (image.reader === 'native') throw new GuestOpenError(image.path, `is ${qemuInstead}`);
    }
  } catch (err) {
    await source?.close();
    await overlay.close();
    throw err;
  }
  if (qemuInstead !== undefined) {
    // A layer guestlens has no reader for (qed, parallels, ...): QEMU reads the whole chain instead.
    await source.close();
    await overlay.close();
    return openInsteadWithQemu(image, options, qemuInstead);
  }
  const opened = source;
  return {
    source: opened,
    format: overlay.format,
    path: image.path,
    async close() {
      try {
        await opened.close();
      } finally {
        await overlay.close();
      }
    },
  };
}
