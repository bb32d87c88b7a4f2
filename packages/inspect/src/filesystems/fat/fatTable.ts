/**
 * The file allocation table as the kernel reads it (fs/fat/fatent.c): only
 * the first FAT (BPB_ExtFlags' active-FAT choice is ignored, as Linux
 * ignores it), 12-, 16- or 28-bit entries, every value from the bad-cluster
 * mark up read as end of chain. Entries come through the sector cache; the
 * free count of statfs scans the whole FAT in large uncached reads, as the
 * kernel counts it at the first statfs.
 */
import {
  BAD_FAT12,
  BAD_FAT16,
  BAD_FAT32,
  FAT32_ENTRY_MASK,
  FAT_START_ENT,
} from './layout.ts';
import type { FatVolume } from './volume.ts';

/** The entry value that ends a chain (and every bad-cluster or reserved mark). */
export const FAT_ENT_EOF = -1;
/** A free cluster. */
export const FAT_ENT_FREE = 0;

/** Bytes read at once when counting free entries. */
const SCAN_CHUNK = 1 << 20;

export class FatTable {
  private readonly fatOffset: number;

  constructor(private readonly vol: FatVolume) {
    this.fatOffset = vol.geometry.fatStart * vol.sectorSize;
  }

  /** Byte offset on the device of a cluster's entry in the first FAT. */
  entryOffset(cluster: number): number {
    const bits = this.vol.geometry.fatBits;
    return this.fatOffset + (bits === 12 ? cluster + (cluster >> 1) : cluster * (bits / 8));
  }

  /**
   * The entry of `cluster` (which the caller has checked is a valid data
   * cluster): the next cluster, FAT_ENT_FREE or FAT_ENT_EOF. The next
   * cluster is returned as stored, valid or not: the caller judges it.
   */
  async entry(cluster: number): Promise<number> {
    const { vol } = this;
    const bits = vol.geometry.fatBits;
    const at = this.entryOffset(cluster);
    const ss = vol.sectorSize;
    const sector = Math.floor(at / ss);
    const within = at - sector * ss;
    const what = `FAT entry ${cluster}`;
    const buf = await vol.sector(sector, what);
    if (bits === 32) {
      const v = buf.readUInt32LE(within) & FAT32_ENTRY_MASK;
      return v >= BAD_FAT32 ? FAT_ENT_EOF : v;
    }
    // A 16-bit read; a FAT12 entry may straddle two sectors.
    const lo = buf[within];
    const hi = within + 1 < ss ? buf[within + 1] : (await vol.sector(sector + 1, what))[0];
    if (bits === 16) {
      const v = lo | (hi << 8);
      return v >= BAD_FAT16 ? FAT_ENT_EOF : v;
    }
    const v = cluster & 1 ? (lo >> 4) | (hi << 4) : lo | ((hi & 0x0f) << 8);
    return v >= BAD_FAT12 ? FAT_ENT_EOF : v;
  }

  /** Free entries among clusters 2 .. maxCluster - 1: the kernel's fat_count_free_clusters. */
  async countFree(): Promise<number> {
    const { vol } = this;
    const bits = vol.geometry.fatBits;
    const max = vol.geometry.maxCluster;
    let free = 0;
    // Whole entries per chunk: FAT12 packs two entries in three bytes.
    const perChunk = bits === 12 ? Math.floor(SCAN_CHUNK / 3) * 2 : SCAN_CHUNK / (bits / 8);
    for (let first = 0; first < max; first += perChunk) {
      const last = Math.min(max, first + perChunk); // exclusive
      const from = this.entryOffset(first);
      const to = bits === 12 ? this.entryOffset(last - 1) + 2 : this.entryOffset(last);
      const buf = await vol.bytes(from, to - from, `FAT (entries ${first}..${last - 1})`);
      for (let c = Math.max(first, FAT_START_ENT); c < last; c++) {
        let v: number;
        if (bits === 32) v = buf.readUInt32LE((c - first) * 4) & FAT32_ENTRY_MASK;
        else if (bits === 16) v = buf.readUInt16LE((c - first) * 2);
        else {
          const o = this.entryOffset(c) - from;
          v = c & 1 ? (buf[o] >> 4) | (buf[o + 1] << 4) : buf[o] | ((buf[o + 1] & 0x0f) << 8);
        }
        if (v === 0) free++;
      }
    }
    return free;
  }
}
