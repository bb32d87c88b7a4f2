/**
 * What `qemu-img info --backing-chain` says about an opened image, layer by
 * layer, with QEMU's JSON field names (so scripts can switch between the two)
 * plus the feature bits by name. Each format's layer describes itself; this
 * file holds the shape and `formatImageInfo`, which prints QEMU's text layout.
 */
import { imageChain } from './openImage.ts';
import { FEATURE_TYPES, type FeatureType } from '../formats/qcow2/features.ts';
import type { ImageLayer } from '../formats/layer.ts';

export interface ImageInfo {
  filename: string;
  format: string;
  /** Undefined when the format is recognised but not read (its size would need the reader). */
  'virtual-size'?: number;
  /** Bytes the file occupies on disk. */
  'actual-size'?: number;
  'cluster-size'?: number;
  'dirty-flag': boolean;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  'format-specific'?: Qcow2Specific | VmdkSpecific;
  /**
   * What guestlens read of formats qemu-img says little about (guestlens's
   * addition): subformat, block and sector sizes, the VHD size rule, a
   * replayed VHDX log.
   */
  'format-details'?: Record<string, string | number | boolean>;
  /** Feature bits set in the header, by name (guestlens's addition). */
  features?: Record<FeatureType, string[]>;
  /** Internal snapshots stored in the image (not read; guestlens's addition). */
  snapshots?: number;
  /** False when guestlens recognises the format but cannot read it (guestlens's addition; absent means true). */
  readable?: false;
  'unreadable-reason'?: string;
  /**
   * Who reads the image's guest bytes, on the top layer (guestlens's addition,
   * set by the CLI): 'native' (guestlens), 'qemu' (qemu-storage-daemon over
   * NBD, for formats guestlens has no reader for, or asked for), 'none'.
   */
  reader?: 'native' | 'qemu' | 'none';
  /** Why no reader could read it ('none'). */
  'reader-error'?: string;
}

export interface Qcow2Specific {
  type: 'qcow2';
  data: {
    compat: '0.10' | '1.1';
    'compression-type': 'zlib' | 'zstd';
    'lazy-refcounts'?: boolean;
    'refcount-bits': number;
    corrupt?: boolean;
    'extended-l2'?: boolean;
    'data-file'?: string;
    'data-file-raw'?: boolean;
  };
}

/** qemu-img info's vmdk block: the descriptor's CIDs and type, one entry per extent. */
export interface VmdkSpecific {
  type: 'vmdk';
  data: {
    cid: number;
    'parent-cid': number;
    'create-type': string;
    extents: VmdkExtentInfo[];
  };
}

export interface VmdkExtentInfo {
  compressed?: boolean;
  'virtual-size': number;
  filename: string;
  'cluster-size'?: number;
  /** The extent line's type (FLAT, SPARSE); empty for a monolithic sparse file, as QEMU shows it. */
  format: string;
}

export function describeImage(top: ImageLayer): ImageInfo[] {
  return imageChain(top).map((layer) => layer.describe());
}

/** QEMU's size_to_str: three significant digits and a binary unit ("196 KiB", "1.5 GiB"). */
export function sizeToString(bytes: number): string {
  const units = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
  const exponent = bytes > 0 ? Math.floor(Math.log2(bytes / (1000 / 1024))) + 1 : 0;
  const i = Math.max(0, Math.min(units.length - 1, Math.trunc((exponent - 1) / 10)));
  const value = bytes / 2 ** (i * 10);
  return `${Number(value.toPrecision(3))} ${units[i]}B`;
}

const READER_TEXT = { native: 'guestlens (native)', qemu: 'QEMU (qemu-storage-daemon over NBD)', none: 'none' } as const;

/** `qemu-img info --backing-chain` text: one block per layer, separated by a blank line. */
export function formatImageInfo(chain: ImageInfo[]): string {
  const blocks = chain.map((info) => {
    const size = info['virtual-size'];
    const lines = [`image: ${info.filename}`, `file format: ${info.format}`, size === undefined ? 'virtual size: unknown' : `virtual size: ${sizeToString(size)} (${size} bytes)`];
    if (info['actual-size'] !== undefined) lines.push(`disk size: ${sizeToString(info['actual-size'])}`);
    if (info['cluster-size'] !== undefined) lines.push(`cluster_size: ${info['cluster-size']}`);
    if (info['backing-filename'] !== undefined) {
      const full = info['full-backing-filename'];
      lines.push(`backing file: ${info['backing-filename']}${full && full !== info['backing-filename'] ? ` (actual path: ${full})` : ''}`);
      if (info['backing-filename-format']) lines.push(`backing file format: ${info['backing-filename-format']}`);
    }
    const specific = info['format-specific'];
    if (specific?.type === 'qcow2') lines.push(...qcow2Lines(specific.data));
    if (specific?.type === 'vmdk') lines.push(...vmdkLines(specific.data));
    const details = info['format-details'];
    if (details && Object.keys(details).length) {
      lines.push('Format details:');
      for (const [key, value] of Object.entries(details)) lines.push(`    ${key}: ${value}`);
    }
    const set = info.features ? FEATURE_TYPES.flatMap((t) => info.features?.[t] ?? []) : [];
    if (set.length) lines.push(`features: ${set.join(', ')}`);
    if (info.snapshots) lines.push(`internal snapshots: ${info.snapshots} (not read)`);
    if (info.readable === false) lines.push(`readable: no (${info['unreadable-reason'] ?? 'not read by guestlens'})`);
    if (info.reader !== undefined) lines.push(`reader: ${READER_TEXT[info.reader]}${info['reader-error'] ? ` (${info['reader-error']})` : ''}`);
    return lines.join('\n');
  });
  return `${blocks.join('\n\n')}\n`;
}

function qcow2Lines(specific: Qcow2Specific['data']): string[] {
  const lines = ['Format specific information:', `    compat: ${specific.compat}`, `    compression type: ${specific['compression-type']}`];
  if (specific['lazy-refcounts'] !== undefined) lines.push(`    lazy refcounts: ${specific['lazy-refcounts']}`);
  lines.push(`    refcount bits: ${specific['refcount-bits']}`);
  if (specific['data-file'] !== undefined) lines.push(`    data file: ${specific['data-file']}`, `    data file raw: ${specific['data-file-raw']}`);
  if (specific.corrupt !== undefined) lines.push(`    corrupt: ${specific.corrupt}`);
  if (specific['extended-l2'] !== undefined) lines.push(`    extended l2: ${specific['extended-l2']}`);
  return lines;
}

/** As qemu-img info prints a vmdk: CIDs, create type, then each extent indented under its index. */
function vmdkLines(specific: VmdkSpecific['data']): string[] {
  const lines = ['Format specific information:', `    cid: ${specific.cid}`, `    parent cid: ${specific['parent-cid']}`, `    create type: ${specific['create-type']}`, '    extents:'];
  specific.extents.forEach((e, i) => {
    lines.push(`        [${i}]:`);
    if (e.compressed) lines.push('            compressed: true');
    lines.push(`            virtual size: ${e['virtual-size']}`, `            filename: ${e.filename}`);
    if (e['cluster-size'] !== undefined) lines.push(`            cluster size: ${e['cluster-size']}`);
    lines.push(`            format: ${e.format}`);
  });
  return lines;
}
