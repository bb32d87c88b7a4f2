/**
 * File checksums as libguestfs's checksum call computes them: crc (POSIX
 * cksum: CRC-32 over the bytes and then the length, as `cksum` prints it),
 * md5, sha1, sha224, sha256, sha384, sha512; read as a stream, memory flat.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { UsageError } from '../errors.ts';

export const CHECKSUMS = ['crc', 'md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUMS)[number];

export function checksumAlgorithm(name: string, option: string): ChecksumAlgorithm {
  if (!(CHECKSUMS as readonly string[]).includes(name)) throw new UsageError(`${option} ${name}: use one of ${CHECKSUMS.join(', ')}`);
  return name as ChecksumAlgorithm;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c >>> 0;
  }
  return t;
})();

class Cksum {
  private crc = 0;
  private length = 0;
  update(data: Buffer): void {
    let c = this.crc;
    for (let i = 0; i < data.length; i++) c = ((c << 8) ^ CRC_TABLE[((c >>> 24) ^ data[i]) & 0xff]) >>> 0;
    this.crc = c;
    this.length += data.length;
  }
  digest(): string {
    let c = this.crc;
    for (let n = this.length; n > 0; n = Math.floor(n / 256)) c = ((c << 8) ^ CRC_TABLE[((c >>> 24) ^ (n & 0xff)) & 0xff]) >>> 0;
    return String(~c >>> 0);
  }
}

/** The checksum of everything `stream` yields. */
export async function checksumStream(algorithm: ChecksumAlgorithm, stream: Readable): Promise<string> {
  const h = algorithm === 'crc' ? new Cksum() : createHash(algorithm);
  for await (const chunk of stream) h.update(chunk as Buffer);
  return h instanceof Cksum ? h.digest() : h.digest('hex');
}
