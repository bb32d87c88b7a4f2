/**
 * The hashes of ext4 hashed directories (ext4fs_dirhash): legacy (dx_hack),
 * half-MD4 and TEA, each in a signed-char and an unsigned-char flavour
 * (superblock flags say which one the filesystem was made with), seeded by
 * s_hash_seed. All arithmetic is on 32-bit words.
 */

export const DX_HASH = {
  LEGACY: 0,
  HALF_MD4: 1,
  TEA: 2,
  LEGACY_UNSIGNED: 3,
  HALF_MD4_UNSIGNED: 4,
  TEA_UNSIGNED: 5,
  SIPHASH: 6,
} as const;

const EXT4_HTREE_EOF_32BIT = 0x7fffffff;

function dxHackHash(name: Uint8Array, signed: boolean): number {
  let hash0 = 0x12a3fe2d;
  let hash1 = 0x37abe8f9;
  for (let i = 0; i < name.length; i++) {
    const c = signed ? (name[i] << 24) >> 24 : name[i];
    let hash = (hash1 + ((hash0 ^ Math.imul(c, 7152373)) >>> 0)) >>> 0;
    if (hash & 0x80000000) hash = (hash - 0x7fffffff) >>> 0;
    hash1 = hash0;
    hash0 = hash;
  }
  return (hash0 << 1) >>> 0;
}

/** Pack up to num*4 name bytes into num big-endian words, padded with a length-derived word. */
function str2hashbuf(msg: Uint8Array, start: number, len: number, num: number, signed: boolean): Uint32Array {
  const buf = new Uint32Array(num);
  let pad = (len | (len << 8)) >>> 0;
  pad = (pad | (pad << 16)) >>> 0;
  if (len > num * 4) len = num * 4;
  const byte = (i: number) => (signed ? (msg[start + i] << 24) >> 24 : msg[start + i]);
  let out = 0;
  let i = 0;
  for (; len - i >= 4; i += 4) buf[out++] = ((byte(i) << 24) + (byte(i + 1) << 16) + (byte(i + 2) << 8) + byte(i + 3)) >>> 0;
  let val = pad;
  for (; i < len; i++) val = (byte(i) + (val << 8)) >>> 0;
  if (out < num) buf[out++] = val;
  while (out < num) buf[out++] = pad;
  return buf;
}

function rol32(x: number, s: number): number {
  return ((x << s) | (x >>> (32 - s))) >>> 0;
}

const K2 = 0o13240474631;
const K3 = 0o15666365641;

function halfMd4Transform(buf: Uint32Array, input: Uint32Array): void {
  let [a, b, c, d] = buf;
  const F = (x: number, y: number, z: number) => z ^ (x & (y ^ z));
  const G = (x: number, y: number, z: number) => ((x & y) + ((x ^ y) & z)) >>> 0;
  const H = (x: number, y: number, z: number) => x ^ y ^ z;
  const round = (f: (x: number, y: number, z: number) => number, w: number, x: number, y: number, z: number, k: number, s: number) =>
    rol32((w + f(x, y, z) + k) >>> 0, s);
  const r1 = [[0, 3], [1, 7], [2, 11], [3, 19], [4, 3], [5, 7], [6, 11], [7, 19]];
  const r2 = [[1, 3], [3, 5], [5, 9], [7, 13], [0, 3], [2, 5], [4, 9], [6, 13]];
  const r3 = [[3, 3], [7, 9], [2, 11], [6, 15], [1, 3], [5, 9], [0, 11], [4, 15]];
  const rounds: [typeof F, number[][], number][] = [[F, r1, 0], [G, r2, K2], [H, r3, K3]];
  for (const [f, steps, k] of rounds) {
    for (let i = 0; i < 8; i++) {
      const [word, s] = steps[i];
      const x = (input[word] + k) >>> 0;
      // The register rotates a, d, c, b through the four positions.
      switch (i % 4) {
        case 0: a = round(f, a, b, c, d, x, s); break;
        case 1: d = round(f, d, a, b, c, x, s); break;
        case 2: c = round(f, c, d, a, b, x, s); break;
        default: b = round(f, b, c, d, a, x, s);
      }
    }
  }
  buf[0] = (buf[0] + a) >>> 0;
  buf[1] = (buf[1] + b) >>> 0;
  buf[2] = (buf[2] + c) >>> 0;
  buf[3] = (buf[3] + d) >>> 0;
}

function teaTransform(buf: Uint32Array, input: Uint32Array): void {
  let sum = 0;
  let b0 = buf[0];
  let b1 = buf[1];
  const [a, b, c, d] = input;
  for (let n = 0; n < 16; n++) {
    sum = (sum + 0x9e3779b9) >>> 0;
    b0 = (b0 + ((((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >>> 5) + b)) >>> 0)) >>> 0;
    b1 = (b1 + ((((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >>> 5) + d)) >>> 0)) >>> 0;
  }
  buf[0] = (buf[0] + b0) >>> 0;
  buf[1] = (buf[1] + b1) >>> 0;
}

/** The major hash of `name` (low bit clear), or undefined for a hash version we cannot compute (siphash needs the key). */
export function dirHash(name: Uint8Array, version: number, seed: Uint32Array): number | undefined {
  const buf = new Uint32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]);
  if (seed.some((w) => w !== 0)) buf.set(seed);
  let hash: number;
  switch (version) {
    case DX_HASH.LEGACY:
    case DX_HASH.LEGACY_UNSIGNED:
      hash = dxHackHash(name, version === DX_HASH.LEGACY);
      break;
    case DX_HASH.HALF_MD4:
    case DX_HASH.HALF_MD4_UNSIGNED:
      for (let p = 0; p < name.length; p += 32) halfMd4Transform(buf, str2hashbuf(name, p, name.length - p, 8, version === DX_HASH.HALF_MD4));
      hash = buf[1];
      break;
    case DX_HASH.TEA:
    case DX_HASH.TEA_UNSIGNED:
      for (let p = 0; p < name.length; p += 16) teaTransform(buf, str2hashbuf(name, p, name.length - p, 4, version === DX_HASH.TEA));
      hash = buf[0];
      break;
    default:
      return undefined;
  }
  hash = (hash & ~1) >>> 0;
  if (hash === (EXT4_HTREE_EOF_32BIT << 1) >>> 0) hash = ((EXT4_HTREE_EOF_32BIT - 1) << 1) >>> 0;
  return hash;
}
