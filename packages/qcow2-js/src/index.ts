/**
 * @guestlens/qcow2-js: image formats by table (raw, qcow2 read here; every
 * other format QEMU probes recognised and named), backing chains opened
 * through the one backing policy, and what `image info` and `image cat` show.
 * The block layer itself is @guestlens/block.
 */
export { RawFileSource } from './file/rawFile.ts';
export { probeFormat, probeFormatFile, readProbeBytes, readProbeBytesSync, PROBE_HEAD_BYTES, PROBE_TAIL_BYTES, type ProbeBytes } from './formats/probe.ts';
export { FORMAT_TABLE, KNOWN_FORMATS, formatDriver, probeDriver } from './formats/table.ts';
export type { ImageLayer, ImageFormatDriver, FormatOpenContext } from './formats/layer.ts';
export { Qcow2Image, DEFAULT_MAX_READ_BYTES, type Qcow2OpenOptions } from './formats/qcow2/qcow2Image.ts';
export { readHeader, type Qcow2Header, type CompressionType } from './formats/qcow2/header.ts';
export { RawImage } from './formats/raw/rawImage.ts';
export { UnreadableImage } from './formats/unreadable/unreadableImage.ts';
export { VdiImage } from './formats/vdi/vdiImage.ts';
export { VpcImage } from './formats/vpc/vpcImage.ts';
export { VhdxImage } from './formats/vhdx/vhdxImage.ts';
export { VmdkImage } from './formats/vmdk/vmdkImage.ts';
export { MappedImage } from './formats/common/mappedImage.ts';
export { openImage, imageChain, DEFAULT_MAX_CHAIN_DEPTH, type OpenImageOptions } from './chain/openImage.ts';
export {
  BackingPolicyCheck,
  BackingRefusedError,
  BACKING_POLICIES,
  isBackingPolicy,
  missingFileError,
  roleOf,
  type BackingPolicy,
  type BackingPolicyName,
  type ReferencedFile,
} from './chain/backingPolicy.ts';
export { readNamedFiles, type NamedFiles } from './chain/namedFiles.ts';
export { resolveBackingName, type LayerSpec } from './chain/backingName.ts';
export { parseQemuJson, flattenOptions } from './chain/qemuJson.ts';
export { describeImage, formatImageInfo, sizeToString, type ImageInfo, type VmdkSpecific, type Qcow2Specific } from './chain/imageInfo.ts';
export { Qcow2Error, isQcow2Error, type Qcow2ErrorKind } from './errors.ts';
export { createChainCache, type ChainCache } from './metadataCache.ts';
export { guestChunks, DEFAULT_CHUNK_BYTES, type GuestChunkOptions } from './guestChunks.ts';
// libzstd's decoder (zstddec's WebAssembly build) and zstd frame boundaries, for other readers of zstd data (btrfs extents).
export { zstdWasm, type ZstdWasm } from './formats/qcow2/zstdWasm.ts';
export { frameExtent } from './formats/qcow2/zstdFrame.ts';
