/**
 * The two hash functions of the journal format. Older files (and every
 * ENTRY's xor_hash) use Bob Jenkins' lookup3 `hashlittle2`, its two 32-bit
 * results joined as (c << 32) | b; files with HEADER_INCOMPATIBLE_KEYED_HASH
 * use SipHash-2-4 keyed by the file's file_id for DATA and FIELD hashes.
 *
 * Both are written here from their published algorithms (no package
 * implements lookup3), on 32-bit halves so that no BigInt arithmetic runs
 * per byte. Results are bigints (the on-disk hash fields are le64).
 */

function rot(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** lookup3's hashlittle2 with both seeds 0, as systemd's jenkins_hash64 calls it. */
export function jenkinsHash64(data: Uint8Array, start = 0, end = data.length): bigint {
  let length = end - start;
  let a = (0xdeadbeef + length) >>> 0;
  let b = a;
  let c = a;
  let k = start;
  const le32 = (p: number) => (data[p] | (data[p + 1] << 8) | (data[p + 2] << 16) | (data[p + 3] << 24)) >>> 0;
  while (length > 12) {
    a = (a + le32(k)) >>> 0;
    b = (b + le32(k + 4)) >>> 0;
    c = (c + le32(k + 8)) >>> 0;
    // mix(a, b, c)
    a = (a - c) >>> 0; a ^= rot(c, 4); c = (c + b) >>> 0;
    b = (b - a) >>> 0; b ^= rot(a, 6); a = (a + c) >>> 0;
    c = (c - b) >>> 0; c ^= rot(b, 8); b = (b + a) >>> 0;
    a = (a - c) >>> 0; a ^= rot(c, 16); c = (c + b) >>> 0;
    b = (b - a) >>> 0; b ^= rot(a, 19); a = (a + c) >>> 0;
    c = (c - b) >>> 0; c ^= rot(b, 4); b = (b + a) >>> 0;
    a >>>= 0; b >>>= 0; c >>>= 0;
    length -= 12;
    k += 12;
  }
  if (length === 0) return (BigInt(c) << 32n) | BigInt(b);
  // The last 1..12 bytes, byte by byte (the same sums the word-wise variants make on little-endian).
  const tail = (i: number) => (i < length ? data[k + i] : 0);
  c = (c + (tail(8) | (tail(9) << 8) | (tail(10) << 16) | (tail(11) << 24))) >>> 0;
  b = (b + (tail(4) | (tail(5) << 8) | (tail(6) << 16) | (tail(7) << 24))) >>> 0;
  a = (a + (tail(0) | (tail(1) << 8) | (tail(2) << 16) | (tail(3) << 24))) >>> 0;
  // final(a, b, c)
  c ^= b; c = (c - rot(b, 14)) >>> 0;
  a ^= c; a = (a - rot(c, 11)) >>> 0;
  b ^= a; b = (b - rot(a, 25)) >>> 0;
  c ^= b; c = (c - rot(b, 16)) >>> 0;
  a ^= c; a = (a - rot(c, 4)) >>> 0;
  b ^= a; b = (b - rot(a, 14)) >>> 0;
  c ^= b; c = (c - rot(b, 24)) >>> 0;
  return (BigInt(c >>> 0) << 32n) | BigInt(b >>> 0);
}

/**
 * SipHash-2-4 state as eight 32-bit words: v0..v3, each (high, low).
 * One array reused by every call: hashing runs synchronously, one call at a time.
 */
const v = new Uint32Array(8);

function add(d: number, s: number): void {
  // v[d] += v[s] (64-bit, on word pairs)
  const lo = (v[d + 1] + v[s + 1]) >>> 0;
  v[d] = (v[d] + v[s] + (lo < v[d + 1] ? 1 : 0)) >>> 0;
  v[d + 1] = lo;
}

function rotl(d: number, n: number): void {
  const h = v[d];
  const l = v[d + 1];
  if (n === 32) {
    v[d] = l;
    v[d + 1] = h;
  } else if (n < 32) {
    v[d] = ((h << n) | (l >>> (32 - n))) >>> 0;
    v[d + 1] = ((l << n) | (h >>> (32 - n))) >>> 0;
  } else {
    const m = n - 32;
    v[d] = ((l << m) | (h >>> (32 - m))) >>> 0;
    v[d + 1] = ((h << m) | (l >>> (32 - m))) >>> 0;
  }
}

function xor(d: number, s: number): void {
  v[d] ^= v[s];
  v[d + 1] ^= v[s + 1];
}

const V0 = 0, V1 = 2, V2 = 4, V3 = 6;

function sipRound(): void {
  add(V0, V1); rotl(V1, 13); xor(V1, V0); rotl(V0, 32);
  add(V2, V3); rotl(V3, 16); xor(V3, V2);
  add(V0, V3); rotl(V3, 21); xor(V3, V0);
  add(V2, V1); rotl(V1, 17); xor(V1, V2); rotl(V2, 32);
}

/** SipHash-2-4 of data[start, end) with a 16-byte key (the file_id), as a le64 value. */
export function siphash24(key: Uint8Array, data: Uint8Array, start = 0, end = data.length): bigint {
  const le32 = (b: Uint8Array, p: number) => (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
  const k0l = le32(key, 0), k0h = le32(key, 4), k1l = le32(key, 8), k1h = le32(key, 12);
  v[0] = (k0h ^ 0x736f6d65) >>> 0; v[1] = (k0l ^ 0x70736575) >>> 0;
  v[2] = (k1h ^ 0x646f7261) >>> 0; v[3] = (k1l ^ 0x6e646f6d) >>> 0;
  v[4] = (k0h ^ 0x6c796765) >>> 0; v[5] = (k0l ^ 0x6e657261) >>> 0;
  v[6] = (k1h ^ 0x74656462) >>> 0; v[7] = (k1l ^ 0x79746573) >>> 0;
  const length = end - start;
  let p = start;
  const whole = start + (length & ~7);
  for (; p < whole; p += 8) {
    const ml = le32(data, p), mh = le32(data, p + 4);
    v[6] ^= mh; v[7] ^= ml;
    sipRound(); sipRound();
    v[0] ^= mh; v[1] ^= ml;
  }
  // Last block: the remaining 0..7 bytes, the length's low byte on top.
  let bl = 0, bh = ((length & 0xff) << 24) >>> 0;
  const rest = end - p;
  for (let i = 0; i < rest; i++) {
    if (i < 4) bl |= data[p + i] << (8 * i);
    else bh |= data[p + i] << (8 * (i - 4));
  }
  bl >>>= 0; bh >>>= 0;
  v[6] ^= bh; v[7] ^= bl;
  sipRound(); sipRound();
  v[0] ^= bh; v[1] ^= bl;
  v[5] ^= 0xff;
  sipRound(); sipRound(); sipRound(); sipRound();
  const h = (v[0] ^ v[2] ^ v[4] ^ v[6]) >>> 0;
  const l = (v[1] ^ v[3] ^ v[5] ^ v[7]) >>> 0;
  return (BigInt(h) << 32n) | BigInt(l);
}
