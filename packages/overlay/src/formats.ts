/**
 * The image formats the overlay lets QEMU open under it: those guestlens
 * reads itself (the overlay is read by qcow2-js, which then reads the image
 * below with its own driver). Other formats QEMU probes (qed, parallels,
 * bochs, dmg, cloop, luks, old qcow) are recognised by the reader's format
 * table and refused here by name.
 */
import { formatDriver } from '@guestlens/qcow2-js';

export const OVERLAY_FORMATS = ['qcow2', 'vmdk', 'vdi', 'vhdx', 'vpc', 'raw'] as const;
export type OverlayFormat = (typeof OVERLAY_FORMATS)[number];

export function isOverlayFormat(name: string): name is OverlayFormat {
  return (OVERLAY_FORMATS as readonly string[]).includes(name);
}

/** What the reader's format table says a recognised format is ("a Parallels disk; guestlens cannot read ..."). */
export function describeUnreadable(format: string): string | undefined {
  return formatDriver(format)?.unreadable;
}
