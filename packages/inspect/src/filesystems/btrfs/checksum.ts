/**
 * The checksums of btrfs metadata and data (superblock csum_type): crc32c
 * (the shared ../crc32c.ts), xxhash64 and blake2b-256 (hash-wasm, loaded
 * only for filesystems that use them) and sha256 (node:crypto). A checksum
 * is stored in the first bytes of a 32-byte field, little-endian for the
 * integer sums, as the kernel's crypto API writes them.
 */
import { createHash } from 'node:crypto';
import { crc32cStandard } from '../crc32c.ts';
import { CSUM_LENGTHS, CSUM_NAMES, CSUM_TYPE } from './layout.ts';

export type ChecksumName = (typeof CSUM_NAMES)[number];

export interface Checksummer {
  readonly name: ChecksumName;
  /** Bytes of the stored sum. */
  readonly length: number;
  /** The sum of `data`, as stored on disk (`length` bytes). */
  digest(data: Uint8Array): Buffer;
}

interface Streaming {
  init(): unknown;
  update(data: Uint8Array): unknown;
  digest(format: 'binary'): Uint8Array;
}

/** The checksummer for a superblock's csum_type, or undefined for a type btrfs does not define. */
export async function checksummerFor(csumType: number): Promise<Checksummer | undefined> {
  switch (csumType) {
    case CSUM_TYPE.CRC32C:
      return {
        name: 'crc32c',
        length: 4,
        digest(data) {
          const out = Buffer.alloc(4);
          out.writeUInt32LE(crc32cStandard(data));
          return out;
        },
      };
    case CSUM_TYPE.XXHASH64: {
      const { createXXHash64 } = await import('hash-wasm');
      const h = (await createXXHash64(0, 0)) as unknown as Streaming;
      return {
        name: 'xxhash64',
        length: 8,
        digest(data) {
          h.init();
          h.update(data);
          // hash-wasm gives the canonical (big-endian) form; the kernel stores the u64 little-endian.
          return Buffer.from(h.digest('binary')).reverse();
        },
      };
    }
    case CSUM_TYPE.SHA256:
      return { name: 'sha256', length: 32, digest: (data) => createHash('sha256').update(data).digest() };
    case CSUM_TYPE.BLAKE2B: {
      const { createBLAKE2b } = await import('hash-wasm');
      const h = (await createBLAKE2b(256)) as unknown as Streaming;
      return {
        name: 'blake2b',
        length: 32,
        digest(data) {
          h.init();
          h.update(data);
          return Buffer.from(h.digest('binary'));
        },
      };
    }
    default:
      return undefined;
  }
}

export function csumLength(csumType: number): number {
  return CSUM_LENGTHS[csumType] ?? 0;
}

/** A stored or computed sum as the number error messages show (its first four bytes). */
export function sumAsNumber(sum: Buffer): number {
  return sum.length >= 4 ? sum.readUInt32LE(0) : 0;
}
