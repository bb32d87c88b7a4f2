/**
 * Where a zstd frame ends, found from its header and block headers alone
 * (RFC 8878 section 3.1.1) without decoding it. QEMU's compressed clusters
 * are zstd frames followed by whatever fills the last 512-byte sector, so
 * the decoder must be handed exactly the frames.
 */

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
const BLOCK_TYPE_RLE = 1;
const BLOCK_TYPE_RESERVED = 3;
const MAX_BLOCK_SIZE = 128 * 1024;

export interface FrameExtent {
  /** Offset just past the frame (checksum included). */
  end: number;
  skippable: boolean;
  /** Frame_Content_Size from the header, when the header has it. */
  contentSize?: number;
}

/** The frame starting at `pos` in `src`, or undefined when it is not a complete, well-formed frame. */
export function frameExtent(src: Uint8Array, pos: number): FrameExtent | undefined {
  if (pos + 4 > src.length) return undefined;
  const magic = le32(src, pos);
  if (((magic & SKIPPABLE_MASK) >>> 0) === SKIPPABLE_MAGIC) {
    if (pos + 8 > src.length) return undefined;
    const end = pos + 8 + le32(src, pos + 4);
    return end <= src.length ? { end, skippable: true } : undefined;
  }
  if (magic !== ZSTD_MAGIC) return undefined;
  let p = pos + 4;
  if (p >= src.length) return undefined;
  const descriptor = src[p++];
  const fcsFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  const reserved = (descriptor >> 3) & 1;
  const checksum = (descriptor >> 2) & 1;
  const dictIdFlag = descriptor & 3;
  if (reserved) return undefined;
  if (!singleSegment) p++;
  p += [0, 1, 2, 4][dictIdFlag];
  const fcsBytes = fcsFlag === 0 ? singleSegment : [0, 2, 4, 8][fcsFlag];
  if (p + fcsBytes > src.length) return undefined;
  let contentSize: number | undefined;
  if (fcsBytes === 1) contentSize = src[p];
  else if (fcsBytes === 2) contentSize = src[p] + (src[p + 1] << 8) + 256;
  else if (fcsBytes === 4) contentSize = le32(src, p);
  else if (fcsBytes === 8) contentSize = le32(src, p) + le32(src, p + 4) * 0x1_0000_0000;
  p += fcsBytes;
  for (;;) {
    if (p + 3 > src.length) return undefined;
    const header = src[p] | (src[p + 1] << 8) | (src[p + 2] << 16);
    p += 3;
    const last = header & 1;
    const type = (header >> 1) & 3;
    const size = header >>> 3;
    if (type === BLOCK_TYPE_RESERVED || size > MAX_BLOCK_SIZE) return undefined;
    // An RLE block stores its one byte; raw and compressed blocks store `size` bytes.
    p += type === BLOCK_TYPE_RLE ? 1 : size;
    if (p > src.length) return undefined;
    if (last) break;
  }
  if (checksum) p += 4;
  if (p > src.length) return undefined;
  return { end: p, skippable: false, contentSize };
}

function le32(src: Uint8Array, p: number): number {
  return (src[p] | (src[p + 1] << 8) | (src[p + 2] << 16) | (src[p + 3] << 24)) >>> 0;
}
