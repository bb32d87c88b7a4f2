/**
 * How a guest image path becomes a block source. Injectable, so the guest
 * API can be driven by anything that yields a BlockSource. The default goes
 * through a throw-away qcow2 overlay (safe while a VM holds the image: the
 * overlay opens it with locking off) and reads the overlay with its chain
 * through qcow2-js; without the overlay, qcow2-js reads the image directly.
 * Every file is opened read-only either way.
 */
import { createOverlay, type BackingPolicy } from '@guestlens/overlay';
import { openImage, Qcow2Image, type BlockSource, type OpenImageOptions } from '@guestlens/qcow2-js';
import { GuestOpenError } from '../errors.ts';

export type { BackingPolicy } from '@guestlens/overlay';

export interface ImageSpec {
  path: string;
  /** The image format; detected by magic when absent (give 'raw' for untrusted raw images). */
  format?: string;
  /** Logical sector size of this disk, for MBR disks that are not 512 (GPT disks reveal theirs). */
  sectorSize?: number;
}

export interface OpenedImage {
  source: BlockSource;
  /** The format the image was read as. */
  format: string;
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

/** qcow2-js's name for each of the overlay package's backing policies. */
const READER_POLICY: Record<BackingPolicy, NonNullable<OpenImageOptions['backingPolicy']>> = {
  allow: 'follow',
  'same-dir': 'same-directory',
  none: 'none',
};

export const openImageDefault: ImageOpener = async (image, options) => {
  if (options.overlay) return openThroughOverlay(image, options);
  const format = image.format;
  if (format !== undefined && format !== 'qcow2' && format !== 'raw') {
    throw new GuestOpenError(image.path, `${format} images can only be read through an overlay (guestlens reads qcow2 and raw itself); leave the overlay on`);
  }
  const source = await openImage(image.path, { format, backingPolicy: READER_POLICY[options.backing ?? 'allow'] });
  return { source, format: source instanceof Qcow2Image ? 'qcow2' : 'raw', close: () => source.close() };
};

async function openThroughOverlay(image: ImageSpec, options: ImageOpenOptions): Promise<OpenedImage> {
  // The overlay package detects the format (never guessing raw into anything else) and checks the chain against the policy.
  const overlay = await createOverlay(image.path, { format: image.format, dir: options.overlayDir, backing: options.backing });
  let source: BlockSource | undefined;
  try {
    // The overlay names the image in a json: backing reference that was checked above; follow it.
    source = await openImage(overlay.path, { format: 'qcow2', backingPolicy: 'follow' });
  } catch (err) {
    await overlay.close();
    throw err;
  }
  const opened = source;
  return {
    source: opened,
    format: overlay.format,
    async close() {
      try {
        await opened.close();
      } finally {
        await overlay.close();
      }
    },
  };
}
