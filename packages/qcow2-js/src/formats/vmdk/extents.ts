/**
 * What a VMDK is made of: its extents, in guest order, each a flat extent (a
 * stretch of a file) or a hosted sparse extent (grain directory, grain
 * tables, grains; deflate-compressed grains with markers in
 * stream-optimized extents), plus the descriptor's identity (CID,
 * parentCID, createType, parentFileNameHint).
 *
 * `readLayout` opens the descriptor file's own structure and names the
 * extent files; every one of them is opened through `openExtent`, which the
 * chain backs with the backing policy (kind 'extent'), so a descriptor that
 * names /etc/shadow is judged before anything reads it.
 */
import type { BlockSource } from '@guestlens/block';
import { chainError, formatError, unsupportedError } from '../../errors.ts';
import type { ReferencedFile } from '../../chain/backingPolicy.ts';
import {
  DESC_WINDOW,
  MAX_VMDK_DESCRIPTOR,
  descriptorText,
  parentFileNameHint,
  parseDescriptor,
  readCid,
  resolveExtentName,
  type ExtentLine,
} from './descriptor.ts';
import { readRawSparseHeader, readSparseHeader, VMDK3_MAGIC, VMDK4_MAGIC, type SparseHeader } from './sparseHeader.ts';

/** createTypes of a separate descriptor QEMU reads (it also reads vmfs, vmfsSparse and seSparse, which guestlens names as unsupported). */
export const DESCRIPTOR_CREATE_TYPES = ['monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat'];
const UNSUPPORTED_CREATE_TYPES = ['vmfs', 'vmfsSparse', 'seSparse'];

interface ExtentBase {
  file: BlockSource;
  /** Guest byte offset of the extent's first byte. */
  start: number;
  bytes: number;
  /** The descriptor's type for it ("FLAT", "SPARSE"), or "" for the monolithic sparse file itself. */
  type: string;
  /** The file as opened (for `image info`). */
  path: string;
}

export interface FlatExtent extends ExtentBase {
  kind: 'flat';
  /** Byte offset in the file of the extent's first sector. */
  flatOffset: number;
}

export interface SparseExtent extends ExtentBase {
  kind: 'sparse';
  header: SparseHeader;
  grainBytes: number;
  /** Guest bytes one grain table covers. */
  gtReach: number;
  gdEntries: number;
}

export type VmdkExtent = FlatExtent | SparseExtent;

export interface VmdkLayout {
  createType: string;
  cid: number;
  parentCid: number;
  parentHint?: string;
  extents: VmdkExtent[];
  size: number;
}

export interface ExtentOpener {
  /** Judge (backing policy, kind 'extent') and open a file the descriptor names. */
  openExtent(ref: ReferencedFile): Promise<BlockSource>;
}

/** The extent files a VMDK's top file names, without opening any: what the named-files walk and the reader both start from. */
export async function describeTopFile(file: BlockSource, image: string): Promise<{ text: string; descriptor?: { createType: string; extents: ExtentLine[] }; sparse?: SparseHeader }> {
  if (file.size < 4) throw formatError(image, `file is ${file.size} bytes, too small to be a VMDK`, 0);
  const magic = (await file.read(0, 4)).toString('latin1');
  if (magic === VMDK4_MAGIC || magic === VMDK3_MAGIC) {
    const header = await readRawSparseHeader(file, image);
    // QEMU reads the identity (CID, parent) of a sparse file from 0x200 on, whatever the header says.
    const text = descriptorText(await readWindow(file, 0x200, DESC_WINDOW));
    if (header.capacity === 0 && header.descriptorOffset !== 0) {
      const embedded = descriptorText(await readWindow(file, header.descriptorOffset * 512, MAX_VMDK_DESCRIPTOR));
      return { text, descriptor: checkedDescriptor(embedded, image) };
    }
    return { text, sparse: header };
  }
  const whole = descriptorText(await readWindow(file, 0, MAX_VMDK_DESCRIPTOR));
  return { text: whole.slice(0, DESC_WINDOW), descriptor: checkedDescriptor(whole, image) };
}

function checkedDescriptor(text: string, image: string): { createType: string; extents: ExtentLine[] } {
  const d = parseDescriptor(text, image);
  if (d.createType === undefined) throw formatError(image, 'not a VMDK descriptor: it has no createType');
  if (UNSUPPORTED_CREATE_TYPES.includes(d.createType)) {
    throw unsupportedError(image, `is a VMware ESX disk (createType ${JSON.stringify(d.createType)}), which guestlens does not read`, undefined, 'convert it with qemu-img convert -O qcow2 and read the copy');
  }
  if (!DESCRIPTOR_CREATE_TYPES.includes(d.createType)) throw unsupportedError(image, `VMDK createType ${JSON.stringify(d.createType)} is not supported`);
  if (d.extents.length === 0) throw formatError(image, 'its descriptor names no extent');
  return { createType: d.createType, extents: d.extents };
}

async function readWindow(file: BlockSource, at: number, bytes: number): Promise<Buffer> {
  const n = Math.max(0, Math.min(bytes, file.size - at));
  return n > 0 ? file.read(at, n) : Buffer.alloc(0);
}

/** Open the descriptor's extents (through `opener`) and read every sparse extent's header. */
export async function readLayout(file: BlockSource, descriptorPath: string, image: string, opener: ExtentOpener, opened: BlockSource[]): Promise<VmdkLayout> {
  const top = await describeTopFile(file, image);
  const identity = (what: 'CID' | 'parentCID') => {
    const v = readCid(top.text, what);
    if (v === undefined) throw formatError(image, `its descriptor has no ${what}`, top.sparse ? 0x200 : 0);
    return v;
  };
  const cid = identity('CID');
  const parentCid = identity('parentCID');
  const parentHint = parentFileNameHint(top.text, image);
  const extents: VmdkExtent[] = [];
  let createType: string;
  if (top.sparse) {
    const header = await readSparseHeader(file, image, top.sparse);
    extents.push(sparseExtent(file, 0, header, '', descriptorPath));
    createType = header.compressed ? 'streamOptimized' : 'monolithicSparse';
  } else {
    const descriptor = top.descriptor as { createType: string; extents: ExtentLine[] };
    createType = descriptor.createType;
    let start = 0;
    for (const line of descriptor.extents) {
      if (line.type !== 'FLAT' && line.type !== 'SPARSE') {
        throw unsupportedError(image, `names a ${line.type} extent (${JSON.stringify(line.name)}), a VMware ESX extent type guestlens does not read`, undefined, 'convert it with qemu-img convert -O qcow2 and read the copy');
      }
      const path = resolveExtentName(line.name, descriptorPath, image);
      const extentFile = await opener.openExtent({ kind: 'extent', image, name: line.name, path });
      opened.push(extentFile);
      let extent: VmdkExtent;
      if (line.type === 'FLAT') {
        extent = { kind: 'flat', file: extentFile, start, bytes: line.sectors * 512, flatOffset: line.flatOffset * 512, type: 'FLAT', path };
      } else {
        const raw = await readRawSparseHeader(extentFile, `${image} (extent ${path})`);
        if (raw.capacity === 0 && raw.descriptorOffset !== 0) {
          throw chainError(image, `names extent ${JSON.stringify(line.name)} (${path}), which is itself a descriptor; nested VMDK descriptors are not read`);
        }
        // The extent's own header says how big it is (QEMU ignores the descriptor's sector count here).
        extent = sparseExtent(extentFile, start, await readSparseHeader(extentFile, `${image} (extent ${path})`, raw), 'SPARSE', path);
      }
      if (!Number.isSafeInteger(start + extent.bytes)) throw formatError(image, 'its extents add up to more than guestlens supports');
      extents.push(extent);
      start += extent.bytes;
    }
  }
  const size = extents.reduce((sum, e) => sum + e.bytes, 0);
  return { createType, cid, parentCid, parentHint, extents, size };
}

function sparseExtent(file: BlockSource, start: number, header: SparseHeader, type: string, path: string): SparseExtent {
  const grainBytes = header.granularity * 512;
  return {
    kind: 'sparse',
    file,
    start,
    bytes: header.capacity * 512,
    type,
    path,
    header,
    grainBytes,
    gtReach: grainBytes * header.numGTEsPerGT,
    gdEntries: Math.ceil(header.capacity / (header.numGTEsPerGT * header.granularity)),
  };
}

/** The index of the extent holding guest byte `offset` (extents are in guest order and tile the disk). */
export function findExtent(extents: VmdkExtent[], offset: number): number {
  let lo = 0;
  let hi = extents.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (extents[mid].start <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
