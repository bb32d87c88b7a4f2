/**
 * The files a VMDK text descriptor names as its extents. `qemu-img info`
 * opens them along with the descriptor, so the backing policy must judge
 * them before any QEMU tool sees the image: this is the part of a VMDK
 * reader that exists before the reader itself.
 */
import { readAtSync } from '@guestlens/block';

const DESCRIPTOR_MAGIC = '# Disk DescriptorFile';
/** QEMU reads at most 1 MiB of a text descriptor. */
export const MAX_VMDK_DESCRIPTOR = 1 << 20;
// QEMU: sscanf("%10s %" SCNd64 " %10s \"%511[^\n\r\"]\"") per line.
const EXTENT_LINE = /^\s*(RW|RDONLY|NOACCESS)\s+\d+\s+\S+\s+"([^"\r\n]{1,511})"/;

/** Extent file names as stored, from the descriptor file open as `fd`; none for sparse VMDKs (their own single extent). */
export function vmdkExtentNames(fd: number): string[] {
  const head = readAtSync(fd, 0, DESCRIPTOR_MAGIC.length);
  if (head.toString('latin1') !== DESCRIPTOR_MAGIC) return [];
  const text = readAtSync(fd, 0, MAX_VMDK_DESCRIPTOR).toString('latin1');
  const extents: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = EXTENT_LINE.exec(line);
    if (m) extents.push(Buffer.from(m[2], 'latin1').toString('utf8'));
  }
  return extents;
}
