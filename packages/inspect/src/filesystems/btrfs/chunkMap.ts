/**
 * Logical → physical: the chunk items (first the superblock's
 * sys_chunk_array, then the chunk tree) say where each range of the
 * filesystem's logical address space lives, on which devices, with which
 * profile. SINGLE, DUP, RAID1/1C3/1C4, RAID0, RAID10 and the data stripes
 * of RAID5/6 (parity is never needed while every device is present) are
 * read; a stripe on a device the guest does not have makes the read fall
 * back to another copy, or fail naming the device.
 */
import { readKey, type Key } from './key.ts';
import { BtrfsCorruptError, BtrfsUnsupportedError } from './errors.ts';
import { CHUNK_ITEM, DISK_KEY_SIZE, KEY, RAID_ATTRIBUTES, profileOf, type Profile } from './layout.ts';

export interface Stripe {
  devid: bigint;
  /** Byte offset on that device. */
  offset: bigint;
}

export interface Chunk {
  logical: bigint;
  length: bigint;
  type: bigint;
  profile: Profile;
  stripeLen: bigint;
  subStripes: number;
  stripes: Stripe[];
}

/** One piece of a logical range that lies in one stripe unit: its copies, in the order to try them. */
export interface PhysicalPiece {
  /** Offset of the piece within the requested range. */
  at: number;
  length: number;
  copies: Stripe[];
}

/** The stripes of a chunk item at `at` in `buf` (of `size` bytes); throws for a chunk that cannot be. */
export function parseChunk(buf: Buffer, at: number, size: number, logical: bigint, image: string, where: string, sectorsize: number): Chunk {
  const fail = (why: string) => new BtrfsCorruptError(image, `chunk item for logical ${logical} (${where})`, undefined, why);
  if (size < CHUNK_ITEM.stripes + CHUNK_ITEM.stripe_size) throw fail(`item of ${size} bytes is shorter than one stripe`);
  const numStripes = buf.readUInt16LE(at + CHUNK_ITEM.num_stripes);
  if (numStripes === 0) throw fail('no stripes');
  if (CHUNK_ITEM.stripes + numStripes * CHUNK_ITEM.stripe_size !== size) throw fail(`${numStripes} stripes do not fill the ${size}-byte item`);
  const length = buf.readBigUInt64LE(at + CHUNK_ITEM.length);
  const stripeLen = buf.readBigUInt64LE(at + CHUNK_ITEM.stripe_len);
  const type = buf.readBigUInt64LE(at + CHUNK_ITEM.type);
  const subStripes = buf.readUInt16LE(at + CHUNK_ITEM.sub_stripes);
  if (length === 0n || length % BigInt(sectorsize) !== 0n) throw fail(`length ${length} is not a positive multiple of the sector size`);
  if (logical % BigInt(sectorsize) !== 0n) throw fail('the logical start is not sector aligned');
  if (stripeLen === 0n || (stripeLen & (stripeLen - 1n)) !== 0n || stripeLen > 1n << 30n) throw fail(`stripe_len ${stripeLen} is not a power of two`);
  const profile = profileOf(type);
  if (!profile) throw fail(`type 0x${type.toString(16)} names more than one profile`);
  const attrs = RAID_ATTRIBUTES[profile];
  const wants: Record<Profile, (n: number) => boolean> = {
    single: (n) => n === 1,
    dup: (n) => n === 2,
    raid1: (n) => n === 2,
    raid1c3: (n) => n === 3,
    raid1c4: (n) => n === 4,
    raid0: (n) => n >= 1,
    raid10: (n) => n >= 2 && subStripes === 2 && n % 2 === 0,
    raid5: (n) => n >= 2,
    raid6: (n) => n >= 3,
  };
  if (!wants[profile](numStripes)) throw fail(`${numStripes} stripes (sub_stripes ${subStripes}) do not fit its ${profile} profile`);
  void attrs;
  const stripes: Stripe[] = [];
  for (let i = 0; i < numStripes; i++) {
    const s = at + CHUNK_ITEM.stripes + i * CHUNK_ITEM.stripe_size;
    stripes.push({ devid: buf.readBigUInt64LE(s), offset: buf.readBigUInt64LE(s + 8) });
  }
  return { logical, length, type, profile, stripeLen, subStripes, stripes };
}

/** The SYSTEM chunks of the superblock's sys_chunk_array (key, chunk, key, chunk, ...). */
export function parseSysChunkArray(array: Buffer, image: string, sectorsize: number): Chunk[] {
  const chunks: Chunk[] = [];
  let p = 0;
  while (p < array.length) {
    if (p + DISK_KEY_SIZE + CHUNK_ITEM.stripes > array.length) throw new BtrfsCorruptError(image, 'sys_chunk_array', undefined, `truncated entry at byte ${p}`);
    const k: Key = readKey(array, p);
    if (k.type !== KEY.CHUNK_ITEM) throw new BtrfsCorruptError(image, 'sys_chunk_array', undefined, `entry at byte ${p} has key type ${k.type}, not a chunk item`);
    p += DISK_KEY_SIZE;
    const numStripes = array.readUInt16LE(p + CHUNK_ITEM.num_stripes);
    const size = CHUNK_ITEM.stripes + numStripes * CHUNK_ITEM.stripe_size;
    if (numStripes === 0 || p + size > array.length) throw new BtrfsCorruptError(image, 'sys_chunk_array', undefined, `chunk at byte ${p} with ${numStripes} stripes runs past the array`);
    chunks.push(parseChunk(array, p, size, k.offset, image, 'sys_chunk_array', sectorsize));
    p += size;
  }
  return chunks;
}

export class ChunkMap {
  private readonly chunks: Chunk[];

  constructor(
    chunks: Chunk[],
    private readonly image: string,
  ) {
    this.chunks = [...chunks].sort((a, b) => (a.logical < b.logical ? -1 : a.logical > b.logical ? 1 : 0));
    for (let i = 1; i < this.chunks.length; i++) {
      const prev = this.chunks[i - 1];
      if (prev.logical + prev.length > this.chunks[i].logical) {
        throw new BtrfsCorruptError(image, `chunk item for logical ${this.chunks[i].logical}`, undefined, `overlaps the chunk at logical ${prev.logical}`);
      }
    }
  }

  get all(): readonly Chunk[] {
    return this.chunks;
  }

  /** The chunk holding `logical`, or undefined. */
  find(logical: bigint): Chunk | undefined {
    let lo = 0;
    let hi = this.chunks.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = this.chunks[mid];
      if (logical < c.logical) hi = mid - 1;
      else if (logical >= c.logical + c.length) lo = mid + 1;
      else return c;
    }
    return undefined;
  }

  /** [logical, logical + length) as pieces, each within one stripe unit, with every copy of it. */
  map(logical: bigint, length: number, what: string): PhysicalPiece[] {
    const pieces: PhysicalPiece[] = [];
    let at = 0;
    while (at < length) {
      const pos = logical + BigInt(at);
      const chunk = this.find(pos);
      if (!chunk) throw new BtrfsCorruptError(this.image, what, undefined, `logical address ${pos} is in no chunk`);
      const off = pos - chunk.logical;
      const { copies, left } = stripeCopies(chunk, off);
      const n = Math.min(length - at, Number(left < BigInt(length) ? left : BigInt(length)));
      pieces.push({ at, length: n, copies });
      at += n;
      // A piece never ends before the chunk or stripe does, so the loop advances each round.
      if (n <= 0) throw new BtrfsCorruptError(this.image, what, undefined, `logical address ${pos} maps to an empty stripe`);
    }
    return pieces;
  }
}

/** The copies of the byte at `off` into `chunk`, and how many bytes from there stay in the same stripe unit. */
function stripeCopies(chunk: Chunk, off: bigint): { copies: Stripe[]; left: bigint } {
  const n = BigInt(chunk.stripes.length);
  const stripeLen = chunk.stripeLen;
  const inChunk = chunk.length - off;
  const within = off % stripeLen;
  const inStripe = stripeLen - within;
  const at = (s: Stripe, row: bigint): Stripe => ({ devid: s.devid, offset: s.offset + row * stripeLen + within });
  switch (chunk.profile) {
    case 'single':
    case 'dup':
    case 'raid1':
    case 'raid1c3':
    case 'raid1c4':
      return { copies: chunk.stripes.map((s) => ({ devid: s.devid, offset: s.offset + off })), left: inChunk };
    case 'raid0': {
      const stripeNr = off / stripeLen;
      return { copies: [at(chunk.stripes[Number(stripeNr % n)], stripeNr / n)], left: min(inStripe, inChunk) };
    }
    case 'raid10': {
      const sub = BigInt(chunk.subStripes);
      const factor = n / sub;
      const stripeNr = off / stripeLen;
      const first = Number((stripeNr % factor) * sub);
      const row = stripeNr / factor;
      return { copies: chunk.stripes.slice(first, first + chunk.subStripes).map((s) => at(s, row)), left: min(inStripe, inChunk) };
    }
    case 'raid5':
    case 'raid6': {
      const dataStripes = n - BigInt(RAID_ATTRIBUTES[chunk.profile].nparity);
      const stripeNr = off / stripeLen;
      const row = stripeNr / dataStripes;
      // Parity rotates one device per full stripe: data stripe i of row r is on device (i + r) mod n.
      const index = Number(((stripeNr % dataStripes) + row) % n);
      return { copies: [at(chunk.stripes[index], row)], left: min(inStripe, inChunk) };
    }
  }
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

export { BtrfsUnsupportedError };
