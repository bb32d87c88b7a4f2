/**
 * VHD fixtures qemu-img cannot write, built to the Virtual Hard Disk Image
 * Format Specification from images it can: other creator applications and
 * geometries (Virtual PC, Hyper-V, Disk2vhd), and differencing disks with
 * parent locators and sector bitmaps.
 */
import { footerChecksum } from '../../../src/formats/vpc/footer.ts';

/** Edit the footer of a VHD (both copies of a dynamic one) and mend its checksum. */
export function editFooter(image: Buffer, edit: (footer: Buffer) => void): Buffer {
  const out = Buffer.from(image);
  const copies = out.toString('latin1', 0, 8) === 'conectix' ? [0, out.length - 512] : [out.length - 512];
  for (const at of copies) {
    const footer = out.subarray(at, at + 512);
    edit(footer);
    footer.writeUInt32BE(footerChecksum(footer), 64);
  }
  return out;
}

export function setCreator(footer: Buffer, app: string): void {
  footer.write(app.padEnd(4, '\0'), 28, 4, 'latin1');
}

export function setGeometry(footer: Buffer, cylinders: number, heads: number, sectors: number): void {
  footer.writeUInt16BE(cylinders, 56);
  footer[58] = heads;
  footer[59] = sectors;
}

export function setCurrentSize(footer: Buffer, bytes: number): void {
  footer.writeBigUInt64BE(BigInt(bytes), 40);
  footer.writeBigUInt64BE(BigInt(bytes), 48);
}

/** The dynamic header's checksum (as the footer's, over its 1024 bytes). */
function mendDynamicHeader(image: Buffer, at: number): void {
  let sum = 0;
  for (let i = 0; i < 1024; i++) if (i < 36 || i >= 40) sum += image[at + i];
  image.writeUInt32BE(~sum >>> 0, at + 36);
}

export interface ParentLink {
  /** The parent footer's unique id. */
  uniqueId: Buffer;
  /** The locators to write, in order: platform code and the name stored for it. */
  locators: { platform: 'W2ru' | 'W2ku' | 'MacX'; name: string }[];
  /** The parent's file name (the dynamic header's parent unicode name). */
  parentName: string;
}

/**
 * A differencing disk from a dynamic one (same size as its parent): the
 * disk type becomes 4, the dynamic header names the parent by unique id and
 * locators, whose data goes where the footer was (the footer moves after it).
 */
export function makeDifferencing(dynamic: Buffer, link: ParentLink): Buffer {
  const dataAt = dynamic.length - 512;
  const blobs = link.locators.map((l) => (l.platform === 'MacX' ? Buffer.from(l.name, 'utf8') : Buffer.from(l.name, 'utf16le')));
  const space = blobs.map((b) => Math.ceil(b.length / 512) * 512);
  const total = space.reduce((a, b) => a + b, 0);
  const out = Buffer.alloc(dynamic.length + total);
  dynamic.copy(out, 0, 0, dataAt);
  let at = dataAt;
  const dyn = Number(dynamic.readBigUInt64BE(16));
  link.uniqueId.copy(out, dyn + 40);
  const name = Buffer.from(link.parentName, 'utf16le');
  name.swap16();
  out.fill(0, dyn + 64, dyn + 576);
  name.copy(out, dyn + 64, 0, Math.min(512, name.length));
  link.locators.forEach((l, i) => {
    const p = dyn + 576 + i * 24;
    out.write(l.platform, p, 4, 'latin1');
    out.writeUInt32BE(space[i] / 512, p + 4);
    out.writeUInt32BE(blobs[i].length, p + 8);
    out.writeBigUInt64BE(BigInt(at), p + 16);
    blobs[i].copy(out, at);
    at += space[i];
  });
  mendDynamicHeader(out, dyn);
  dynamic.copy(out, at, dataAt);
  return editFooter(out, (f) => f.writeUInt32BE(4, 60));
}

/** The BAT entries of a dynamic or differencing VHD: the sector of each block's bitmap, or undefined when unallocated. */
export function blockSectors(image: Buffer): (number | undefined)[] {
  const dyn = Number(image.readBigUInt64BE(16));
  const bat = Number(image.readBigUInt64BE(dyn + 16));
  const entries = image.readUInt32BE(dyn + 28);
  return Array.from({ length: entries }, (_, i) => {
    const e = image.readUInt32BE(bat + i * 4);
    return e === 0xffffffff ? undefined : e;
  });
}

/** Set the sector bitmap of the block whose bitmap starts at sector `bitmapSector`: `present(s)` for each of its sectors (big-endian bit order). */
export function setBitmap(image: Buffer, bitmapSector: number, sectorsPerBlock: number, present: (sector: number) => boolean): void {
  const at = bitmapSector * 512;
  for (let s = 0; s < sectorsPerBlock; s++) {
    const mask = 0x80 >> (s & 7);
    if (present(s)) image[at + (s >> 3)] |= mask;
    else image[at + (s >> 3)] &= ~mask;
  }
}
