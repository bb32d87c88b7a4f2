/** What `image info` says of a qcow2 layer, with qemu-img info's field names. */
import type { ImageInfo, Qcow2Specific } from '../../chain/imageInfo.ts';
import { RawFileSource } from '../../file/rawFile.ts';
import { fullBackingName } from '../common/describe.ts';
import { featureNames, FEATURE_TYPES, type FeatureType } from './features.ts';
import type { Qcow2Image } from './qcow2Image.ts';

export function describeQcow2(layer: Qcow2Image): ImageInfo {
  const h = layer.header;
  const info: ImageInfo = {
    filename: layer.name,
    format: 'qcow2',
    'virtual-size': layer.size,
    'actual-size': layer.file instanceof RawFileSource ? layer.file.allocatedBytes : undefined,
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
  const data: Qcow2Specific['data'] = {
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
