/**
 * Reads for the probe: every signature sits in the first few hundred KiB (or
 * a few sectors further, for FAT and NTFS labels), so reads are small and
 * cached per call; a read past the end of the device is "no signature here",
 * not an error.
 */
import { BoundedLru, type BlockSource } from '@guestlens/block';

/** Probes read at most this much in one request (a FAT32 cluster is at most 64 KiB). */
const MAX_READ = 256 * 1024;

export class ProbeReader {
  private readonly cache = new BoundedLru<string, Buffer>(4 * MAX_READ, (b) => b.length);

  constructor(readonly source: BlockSource) {}

  get size(): number {
    return this.source.size;
  }

  /** `length` bytes at `offset`, or undefined when they are not all on the device. */
  async read(offset: number, length: number): Promise<Buffer | undefined> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || length > MAX_READ) return undefined;
    if (offset + length > this.source.size) return undefined;
    const key = `${offset}:${length}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const buf = await this.source.read(offset, length);
    this.cache.set(key, buf);
    return buf;
  }
}
