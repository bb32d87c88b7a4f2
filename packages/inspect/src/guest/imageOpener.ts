/**
 * How a guest image path becomes a block source. Injectable, so the guest
 * API can be driven by anything that yields a BlockSource; the default reads
 * the image read-only.
 */
import { probeFormatFile, RawFileSource, type BlockSource } from '@guestlens/qcow2-js';
import { GuestOpenError } from '../errors.ts';

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
}

export type ImageOpener = (image: ImageSpec, options: ImageOpenOptions) => Promise<OpenedImage>;

/**
 * The default opener: raw images read directly, O_RDONLY. A raw file needs no
 * overlay to be read while a VM writes it (nothing is locked by a plain
 * read-only open). Other formats need the qcow2 reader's openImage.
 */
export const openImageDefault: ImageOpener = async (image) => {
  const format = image.format ?? (await probeFormatFile(image.path));
  if (format !== 'raw') {
    throw new GuestOpenError(image.path, `reading ${format} images is not available in this build of guestlens (only raw)`);
  }
  const source = await RawFileSource.open(image.path);
  return { source, format, close: () => source.close() };
};
