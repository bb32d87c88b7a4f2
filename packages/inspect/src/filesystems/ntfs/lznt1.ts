/**
 * LZNT1, the compression of NTFS compressed files: a compression unit's
 * stored clusters hold a sequence of chunks, each decompressing to (at most)
 * 4096 bytes. A chunk starts with a 16-bit header (bits 0..11: chunk size
 * minus 3, bit 15: compressed); a zero header ends the data. A compressed
 * chunk is groups of a flag byte and eight tokens: a literal byte (flag bit
 * 0) or a 16-bit back reference (flag bit 1) whose split between offset and
 * length depends on how far into the chunk we are (more offset bits further
 * in). A chunk that decompresses short is padded with zeros, and so is the
 * unit after the last chunk.
 */

export const LZNT1_CHUNK_SIZE = 4096;

export class Lznt1Error extends Error {
  constructor(
    readonly at: number,
    reason: string,
  ) {
    super(`LZNT1 data at byte ${at}: ${reason}`);
  }
}

/** Decompress `src` into `dest` (its whole length, zero-filled past the data). Throws Lznt1Error on malformed data. */
export function lznt1Decompress(src: Buffer, dest: Buffer): void {
  let s = 0;
  let d = 0;
  const destEnd = dest.length;
  // Each chunk consumes at least 3 bytes of input, so this ends within src.length / 3 chunks.
  while (s + 2 <= src.length && d < destEnd) {
    const header = src.readUInt16LE(s);
    if (header === 0) break;
    const chunkEnd = s + (header & 0x0fff) + 3;
    if (chunkEnd > src.length) throw new Lznt1Error(s, `chunk of ${chunkEnd - s} bytes runs past the end of the compressed data`);
    const chunkStart = d;
    const chunkLimit = d + LZNT1_CHUNK_SIZE;
    if (chunkLimit > destEnd) throw new Lznt1Error(s, 'more chunks than the compression unit holds');
    s += 2;
    if (!(header & 0x8000)) {
      if (chunkEnd - s !== LZNT1_CHUNK_SIZE) throw new Lznt1Error(s - 2, `an uncompressed chunk holds ${chunkEnd - s} bytes, not ${LZNT1_CHUNK_SIZE}`);
      src.copy(dest, d, s, chunkEnd);
      s = chunkEnd;
      d += LZNT1_CHUNK_SIZE;
      continue;
    }
    while (s < chunkEnd) {
      let flags = src[s++];
      for (let t = 0; t < 8 && s < chunkEnd; t++, flags >>= 1) {
        if (!(flags & 1)) {
          if (d >= chunkLimit) throw new Lznt1Error(s, 'a chunk decompresses to more than 4096 bytes');
          dest[d++] = src[s++];
          continue;
        }
        if (s + 2 > chunkEnd) throw new Lznt1Error(s, 'a back reference is cut by the end of its chunk');
        const pos = d - chunkStart;
        if (pos === 0) throw new Lznt1Error(s, 'a back reference before any data');
        let lengthBits = 12;
        for (let i = pos - 1; i >= 0x10; i >>= 1) lengthBits--;
        const token = src.readUInt16LE(s);
        s += 2;
        const back = (token >> lengthBits) + 1;
        const length = (token & ((1 << lengthBits) - 1)) + 3;
        if (back > pos) throw new Lznt1Error(s - 2, `a back reference ${back} bytes back, only ${pos} decompressed`);
        if (d + length > chunkLimit) throw new Lznt1Error(s - 2, 'a back reference runs past the end of its 4096-byte chunk');
        // Byte by byte: the source may overlap what is being written (a run of repeats).
        for (let i = 0; i < length; i++, d++) dest[d] = dest[d - back];
      }
    }
    if (d < chunkLimit) {
      dest.fill(0, d, chunkLimit);
      d = chunkLimit;
    }
  }
  if (d < destEnd) dest.fill(0, d, destEnd);
}
