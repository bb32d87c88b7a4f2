/**
 * qcow2 v3 feature bits (header offsets 72, 80, 88) and the names QEMU gives
 * them, so `image info` and error messages speak QEMU's language.
 */

export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;
export const INCOMPAT_DATA_FILE = 1n << 2n;
export const INCOMPAT_COMPRESSION = 1n << 3n;
export const INCOMPAT_EXTL2 = 1n << 4n;
/** Every incompatible bit this reader understands; any other one makes the image unreadable. */
export const INCOMPAT_KNOWN = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;

export const COMPAT_LAZY_REFCOUNTS = 1n << 0n;

export const AUTOCLEAR_BITMAPS = 1n << 0n;
export const AUTOCLEAR_DATA_FILE_RAW = 1n << 1n;

export type FeatureType = 'incompatible' | 'compatible' | 'autoclear';

export const FEATURE_TYPES: readonly FeatureType[] = ['incompatible', 'compatible', 'autoclear'];

/** QEMU's own names, used when the image carries no feature-name table. */
const BUILTIN_NAMES: Record<FeatureType, Record<number, string>> = {
  incompatible: { 0: 'dirty bit', 1: 'corrupt bit', 2: 'external data file', 3: 'compression type', 4: 'extended L2 entries' },
  compatible: { 0: 'lazy refcounts' },
  autoclear: { 0: 'bitmaps', 1: 'raw external data' },
};

export interface FeatureName {
  type: FeatureType;
  bit: number;
  name: string;
}

/** Names of the bits set in `mask`, from the image's table first, then QEMU's. */
export function featureNames(type: FeatureType, mask: bigint, table: readonly FeatureName[]): string[] {
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if (!(mask & (1n << BigInt(bit)))) continue;
    const fromImage = table.find((f) => f.type === type && f.bit === bit)?.name;
    names.push(fromImage ?? BUILTIN_NAMES[type][bit] ?? `unknown ${type} feature bit ${bit}`);
  }
  return names;
}
