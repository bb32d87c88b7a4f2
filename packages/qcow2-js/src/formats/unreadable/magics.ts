/**
 * Formats QEMU recognises by their magic and guestlens does not read yet.
 * Each is still recognised, so it is never mistaken for raw (which would
 * stream the container's bytes as if they were the guest's disk), and named
 * when refused. The checks are those of QEMU's bdrv_probe functions.
 */
import type { ImageFormatDriver } from '../layer.ts';

const HINT = 'guestlens reads them through QEMU (qemu-storage-daemon over NBD) unless --reader native is given, or convert it with qemu-img convert -O qcow2 and read the copy';

function startsWith(buf: Buffer, magic: string | Buffer, at = 0): boolean {
  const m = typeof magic === 'string' ? Buffer.from(magic, 'latin1') : magic;
  return buf.length >= at + m.length && buf.subarray(at, at + m.length).equals(m);
}

function unreadable(format: string, probe: ImageFormatDriver['probe'], what: string): ImageFormatDriver {
  return { format, probe, unreadable: `${what}; guestlens has no reader of its own for ${format} images: ${HINT}` };
}

/** qcow2's magic with version 1: the older "qcow" format. */
export const qcowV1 = unreadable('qcow', (h) => h.length >= 8 && h.readUInt32BE(0) === 0x514649fb && h.readUInt32BE(4) === 1, 'a qcow (version 1) image');

export const qed = unreadable('qed', (h) => h.length >= 4 && h.readUInt32LE(0) === 0x00444551, 'a QED image');

export const parallels = unreadable(
  'parallels',
  (h) => (startsWith(h, 'WithoutFreeSpace') || startsWith(h, 'WithouFreSpacExt')) && h.length >= 20 && h.readUInt32LE(16) === 2,
  'a Parallels disk',
);

/** "Bochs Virtual HD Image", type "Redolog", subtype "Growing"/"Undoable"/"Volatile". */
export const bochs = unreadable(
  'bochs',
  (h) =>
    h.length >= 512 &&
    cstr(h, 0, 32) === 'Bochs Virtual HD Image' &&
    cstr(h, 32, 16) === 'Redolog' &&
    ['Growing', 'Undoable', 'Volatile'].includes(cstr(h, 48, 16)) &&
    [0x00020000, 0x00010000].includes(h.readUInt32LE(64)),
  'a Bochs disk',
);

export const cloop = unreadable('cloop', (h) => startsWith(h, '#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n'), 'a compressed loop (cloop) image');

export const luks = unreadable(
  'luks',
  (h) => startsWith(h, Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe])) && h.length >= 8 && [1, 2].includes(h.readUInt16BE(6)),
  'a LUKS-encrypted image',
);

/** Apple disk images: QEMU knows them by the ".dmg" name; the UDIF trailer "koly" says so too. */
export const dmg = unreadable('dmg', (_h, t, filename) => /\.dmg$/i.test(filename) || (t !== undefined && t.length >= 512 && startsWith(t.subarray(t.length - 512), 'koly')), 'an Apple disk image (dmg)');

function cstr(buf: Buffer, at: number, length: number): string {
  const raw = buf.subarray(at, at + length);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? raw.length : nul).toString('latin1');
}
