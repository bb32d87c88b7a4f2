/**
 * What `qemu-img info --backing-chain` says about an opened image, layer by
 * layer, with QEMU's JSON field names (so scripts can switch between the two)
 * plus the feature bits by name. `formatImageInfo` prints QEMU's text layout.
 */
import { dirname, isAbsolute, join } from 'node:path';
import { imageChain } from './openImage.ts';
import { featureNames, FEATURE_TYPES, type FeatureType } from './features.ts';
import { Qcow2Image } from './qcow2Image.ts';
import { RawFileSource } from './rawFile.ts';
import { RawImage } from './rawImage.ts';
import type { BlockSource } from './blockSource.ts';

export interface ImageInfo {
  filename: string;
  format: string;
  'virtual-size': number;
  /** Bytes the file occupies on disk. */
  'actual-size'?: number;
  'cluster-size'?: number;
  'dirty-flag': boolean;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  'format-specific'?: {
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
  };
  /** Feature bits set in the header, by name (guestlens's addition). */
  features?: Record<FeatureType, string[]>;
  /** Internal snapshots stored in the image (not read; guestlens's addition). */
  snapshots?: number;
}

export function describeImage(top: BlockSource): ImageInfo[] {
  return imageChain(top).map(describeLayer);
}

function describeLayer(layer: BlockSource): ImageInfo {
  if (layer instanceof Qcow2Image) {
    const h = layer.header;
    const info: ImageInfo = {
      filename: layer.name,
      format: 'qcow2',
      'virtual-size': layer.size,
      'actual-size': allocated(layer.file),
      'cluster-size': h.clusterSize,
      'dirty-flag': layer.dirty,
    };
    if (h.backingFileName !== undefined) {
      info['backing-filename'] = h.backingFileName;
      info['full-backing-filename'] = fullBackingName(h.backingFileName, layer.name);
      if (h.backingFormat) info['backing-filename-format'] = h.backingFormat;
    }
    const v3 = h.version >= 3;
    // In QEMU's order; v2 images have no lazy-refcount, corrupt or extended-L2 fields.
    const data: NonNullable<ImageInfo['format-specific']>['data'] = {
      compat: v3 ? '1.1' : '0.10',
      'compression-type': h.compressionType === 'zstd' ? 'zstd' : 'zlib',
      ...(v3 ? { 'lazy-refcounts': layer.lazyRefcounts } : {}),
      'refcount-bits': 2 ** h.refcountOrder,
      ...(v3 && layer.hasDataFile ? { 'data-file': h.dataFileName, 'data-file-raw': layer.dataFileRaw } : {}),
      ...(v3 ? { corrupt: layer.corrupt, 'extended-l2': h.extendedL2 } : {}),
    };
    info['format-specific'] = { type: 'qcow2', data };
    const masks: Record<FeatureType, bigint> = { incompatible: h.incompatibleFeatures, compatible: h.compatibleFeatures, autoclear: h.autoclearFeatures };
    info.features = Object.fromEntries(FEATURE_TYPES.map((t) => [t, featureNames(t, masks[t], h.featureTable)])) as Record<FeatureType, string[]>;
    if (h.nbSnapshots) info.snapshots = h.nbSnapshots;
    return info;
  }
  const file = layer instanceof RawImage ? layer.file : layer;
  return { filename: layer.name, format: 'raw', 'virtual-size': layer.size, 'actual-size': allocated(file), 'dirty-flag': false };
}

function allocated(file: BlockSource): number | undefined {
  return file instanceof RawFileSource ? file.allocatedBytes : undefined;
}

/** As QEMU shows it: a plain relative name joined to the naming image's directory; json: and protocols as they are. */
function fullBackingName(name: string, image: string): string {
  if (name.startsWith('json:') || isAbsolute(name) || /^[^/]*:/.test(name)) return name;
  return join(dirname(image), name);
}

/** QEMU's size_to_str: three significant digits and a binary unit ("196 KiB", "1.5 GiB"). */
export function sizeToString(bytes: number): string {
  const units = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
  const exponent = bytes > 0 ? Math.floor(Math.log2(bytes / (1000 / 1024))) + 1 : 0;
  const i = Math.max(0, Math.min(units.length - 1, Math.trunc((exponent - 1) / 10)));
  const value = bytes / 2 ** (i * 10);
  return `${Number(value.toPrecision(3))} ${units[i]}B`;
}

/** `qemu-img info --backing-chain` text: one block per layer, separated by a blank line. */
export function formatImageInfo(chain: ImageInfo[]): string {
  const blocks = chain.map((info) => {
    const lines = [`image: ${info.filename}`, `file format: ${info.format}`, `virtual size: ${sizeToString(info['virtual-size'])} (${info['virtual-size']} bytes)`];
    if (info['actual-size'] !== undefined) lines.push(`disk size: ${sizeToString(info['actual-size'])}`);
    if (info['cluster-size'] !== undefined) lines.push(`cluster_size: ${info['cluster-size']}`);
    if (info['backing-filename'] !== undefined) {
      const full = info['full-backing-filename'];
      lines.push(`backing file: ${info['backing-filename']}${full && full !== info['backing-filename'] ? ` (actual path: ${full})` : ''}`);
      if (info['backing-filename-format']) lines.push(`backing file format: ${info['backing-filename-format']}`);
    }
    const specific = info['format-specific']?.data;
    if (specific) {
      lines.push('Format specific information:');
      lines.push(`    compat: ${specific.compat}`);
      lines.push(`    compression type: ${specific['compression-type']}`);
      if (specific['lazy-refcounts'] !== undefined) lines.push(`    lazy refcounts: ${specific['lazy-refcounts']}`);
      lines.push(`    refcount bits: ${specific['refcount-bits']}`);
      if (specific['data-file'] !== undefined) lines.push(`    data file: ${specific['data-file']}`, `    data file raw: ${specific['data-file-raw']}`);
      if (specific.corrupt !== undefined) lines.push(`    corrupt: ${specific.corrupt}`);
      if (specific['extended-l2'] !== undefined) lines.push(`    extended l2: ${specific['extended-l2']}`);
    }
    const set = info.features ? FEATURE_TYPES.flatMap((t) => info.features?.[t] ?? []) : [];
    if (set.length) lines.push(`features: ${set.join(', ')}`);
    if (info.snapshots) lines.push(`internal snapshots: ${info.snapshots} (not read)`);
    return lines.join('\n');
  });
  return `${blocks.join('\n\n')}\n`;
}
