/**
 * The image property's model: a random image case (a format with its
 * options, or a qcow2 backing chain over a qcow2 or raw base, and random
 * writes at each layer) as fast-check arbitraries, and the exact command
 * list (qemu-img create/convert, qemu-io) that builds it. The commands are
 * what runs, so a counterexample prints as a script that rebuilds it.
 */
import fc from 'fast-check';
import { sh } from '../support/run.ts';
import { shellLine } from '../support/properties.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/** One qemu-io command. Offsets and lengths are bytes, unaligned allowed. */
export type Write =
  | { op: 'write'; offset: number; length: number; pattern: number }
  | { op: 'zero'; offset: number; length: number; unmap: boolean }
  | { op: 'discard'; offset: number; length: number }
  /** `write -c` of whole clusters (qcow2): `clusters` clusters from cluster number `cluster`. */
  | { op: 'compressed'; cluster: number; clusters: number; pattern: number };

export interface Qcow2Options {
  clusterSize: number;
  compat: '0.10' | '1.1';
  extendedL2: boolean;
  compression: 'zlib' | 'zstd';
}

export interface ChainLayer {
  format: 'qcow2' | 'raw';
  size: number;
  qcow2?: Qcow2Options;
  writes: Write[];
}

/** A qcow2 chain: layers[0] is the base (qcow2 or raw), every other layer a qcow2 overlay of the one before. */
export interface ChainCase {
  kind: 'chain';
  layers: ChainLayer[];
  ranges: Array<[number, number]>;
}

export type ConvertTarget =
  | { format: 'vmdk'; subformat: 'monolithicSparse' | 'streamOptimized' | 'monolithicFlat' | 'twoGbMaxExtentSparse' }
  | { format: 'vhdx'; subformat: 'dynamic' | 'fixed'; blockSize: number }
  | { format: 'vpc'; subformat: 'dynamic' | 'fixed' }
  | { format: 'vdi'; static: boolean };

/** A random raw, converted to `target`; then `direct` writes through qemu-io into the image itself where QEMU can write that format. */
export interface ConvertCase {
  kind: 'convert';
  size: number;
  target: ConvertTarget;
  raw: Write[];
  direct: Write[];
  ranges: Array<[number, number]>;
}

export type ImageCase = ChainCase | ConvertCase;

// ---- arbitraries --------------------------------------------------------

/** Disk sizes in sectors: tiny ones (smaller than a cluster) as often as a few MiB. */
const sizeArb = fc.oneof(fc.integer({ min: 1, max: 256 }), fc.integer({ min: 257, max: (8 * MiB) / 512 })).map((sectors) => sectors * 512);

/** A byte range of a disk of `size`: placed from the start or against the end, any length up to ~1 MiB, unaligned. */
export function rangeArb(size: number): fc.Arbitrary<[number, number]> {
  return fc
    .record({
      fromEnd: fc.boolean(),
      at: fc.integer({ min: 0, max: 1 << 24 }),
      length: fc.oneof(fc.integer({ min: 1, max: 600 }), fc.integer({ min: 1, max: 200 * KiB }), fc.integer({ min: 1, max: MiB })),
    })
    .map(({ fromEnd, at, length }) => {
      const len = Math.min(length, size);
      const slack = size - len;
      const offset = fromEnd ? slack - (at % (Math.min(slack, 8 * KiB) + 1)) : Math.floor((at / (1 << 24)) * slack);
      return [offset, len] as [number, number];
    });
}

export function writeArb(size: number, clusterSize: number | undefined, ops: ReadonlyArray<Write['op']>): fc.Arbitrary<Write> {
  const byOp: fc.Arbitrary<Write>[] = [];
  if (ops.includes('write')) byOp.push(fc.tuple(rangeArb(size), fc.integer({ min: 0, max: 255 })).map(([[offset, length], pattern]) => ({ op: 'write' as const, offset, length, pattern })));
  if (ops.includes('zero')) byOp.push(fc.tuple(rangeArb(size), fc.boolean()).map(([[offset, length], unmap]) => ({ op: 'zero' as const, offset, length, unmap })));
  if (ops.includes('discard')) byOp.push(rangeArb(size).map(([offset, length]) => ({ op: 'discard' as const, offset, length })));
  const whole = clusterSize ? Math.floor(size / clusterSize) : 0;
  if (ops.includes('compressed') && whole > 0) {
    byOp.push(
      fc.record({ cluster: fc.nat({ max: whole - 1 }), clusters: fc.integer({ min: 1, max: 4 }), pattern: fc.integer({ min: 0, max: 255 }) }).map(({ cluster, clusters, pattern }) => ({
        op: 'compressed' as const,
        cluster,
        clusters: Math.min(clusters, whole - cluster),
        pattern,
      })),
    );
  }
  return fc.oneof(...byOp);
}

const qcow2OptionsArb: fc.Arbitrary<Qcow2Options> = fc
  .record({
    clusterBits: fc.integer({ min: 9, max: 21 }),
    compat: fc.constantFrom('1.1' as const, '0.10' as const),
    extendedL2: fc.boolean(),
    compression: fc.constantFrom('zlib' as const, 'zstd' as const),
  })
  .map(({ clusterBits, compat, extendedL2, compression }) => ({
    clusterSize: 2 ** clusterBits,
    compat,
    // QEMU's rules: subclusters need clusters of 16 KiB and up, and neither they nor zstd exist in version 2 images.
    extendedL2: compat === '1.1' && clusterBits >= 14 && extendedL2,
    compression: compat === '1.1' ? compression : 'zlib',
  }));

/**
 * Compressed writes only go to clusters nothing was written to (QEMU refuses
 * to compress over an allocated cluster), so each layer's compressed writes
 * come first and touch each cluster once.
 */
function orderWrites(writes: Write[]): Write[] {
  const seen = new Set<number>();
  const compressed: Write[] = [];
  for (const w of writes) {
    if (w.op !== 'compressed') continue;
    let free = true;
    for (let c = w.cluster; c < w.cluster + w.clusters; c++) if (seen.has(c)) free = false;
    if (!free) continue;
    for (let c = w.cluster; c < w.cluster + w.clusters; c++) seen.add(c);
    compressed.push(w);
  }
  return [...compressed, ...writes.filter((w) => w.op !== 'compressed')];
}

function layerArb(size: number, raw: boolean): fc.Arbitrary<ChainLayer> {
  return qcow2OptionsArb.chain((qcow2) =>
    fc.array(writeArb(size, raw ? undefined : qcow2.clusterSize, raw ? ['write', 'zero', 'discard'] : ['write', 'zero', 'discard', 'compressed']), { maxLength: 8 }).map((writes) => ({
      format: raw ? ('raw' as const) : ('qcow2' as const),
      size,
      ...(raw ? {} : { qcow2 }),
      writes: orderWrites(writes),
    })),
  );
}

/** Sizes of a chain, base first: overlays mostly keep their backing file's size, sometimes grow or shrink it. */
const chainSizesArb = fc.tuple(sizeArb, fc.array(fc.tuple(fc.nat({ max: 9 }), sizeArb), { maxLength: 2 })).map(([base, overlays]) => {
  const sizes = [base];
  for (const [choice, size] of overlays) sizes.push(choice < 6 ? sizes[sizes.length - 1] : size);
  return sizes;
});

export const chainCaseArb: fc.Arbitrary<ChainCase> = fc.tuple(fc.boolean(), chainSizesArb).chain(([rawBase, sizes]) =>
  fc
    .tuple(fc.tuple(...sizes.map((size, n) => layerArb(size, n === 0 && rawBase))), fc.array(rangeArb(sizes[sizes.length - 1]), { maxLength: 4 }))
    .map(([layers, ranges]) => ({ kind: 'chain' as const, layers, ranges })),
);

const convertTargetArb: fc.Arbitrary<ConvertTarget> = fc.oneof(
  fc.constantFrom('monolithicSparse' as const, 'streamOptimized' as const, 'monolithicFlat' as const, 'twoGbMaxExtentSparse' as const).map((subformat) => ({ format: 'vmdk' as const, subformat })),
  fc.record({ subformat: fc.constantFrom('dynamic' as const, 'fixed' as const), blockSize: fc.constantFrom(MiB, 2 * MiB, 8 * MiB, 32 * MiB) }).map((o) => ({ format: 'vhdx' as const, ...o })),
  fc.constantFrom('dynamic' as const, 'fixed' as const).map((subformat) => ({ format: 'vpc' as const, subformat })),
  fc.boolean().map((s) => ({ format: 'vdi' as const, static: s })),
);

/** Formats whose images QEMU writes in place (a stream-optimized vmdk it only writes while converting). */
export function writableInPlace(t: ConvertTarget): boolean {
  return !(t.format === 'vmdk' && t.subformat === 'streamOptimized');
}

export const convertCaseArb: fc.Arbitrary<ConvertCase> = fc.record({ size: sizeArb, target: convertTargetArb }).chain(({ size, target }) =>
  fc
    .record({
      raw: fc.array(writeArb(size, undefined, ['write', 'zero', 'discard']), { maxLength: 8 }),
      direct: writableInPlace(target) ? fc.array(writeArb(size, undefined, ['write', 'zero']), { maxLength: 4 }) : fc.constant<Write[]>([]),
      ranges: fc.array(rangeArb(size), { maxLength: 4 }),
    })
    .map((rest) => ({ kind: 'convert' as const, size, target, ...rest })),
);

export const imageCaseArb: fc.Arbitrary<ImageCase> = fc.oneof(chainCaseArb, convertCaseArb);

// ---- the commands -------------------------------------------------------

function qemuIoCommand(w: Write, clusterSize?: number): string {
  switch (w.op) {
    case 'write':
      return `write -P ${w.pattern} ${w.offset} ${w.length}`;
    case 'zero':
      return `write -z${w.unmap ? ' -u' : ''} ${w.offset} ${w.length}`;
    case 'discard':
      return `discard ${w.offset} ${w.length}`;
    case 'compressed':
      return `write -c -P ${w.pattern} ${w.cluster * clusterSize!} ${w.clusters * clusterSize!}`;
  }
}

function qemuIo(file: string, format: string, writes: Write[], clusterSize?: number): string[][] {
  return writes.length ? [['qemu-io', '-f', format, ...writes.flatMap((w) => ['-c', qemuIoCommand(w, clusterSize)]), file]] : [];
}

function qcow2CreateOptions(o: Qcow2Options): string {
  return [`cluster_size=${o.clusterSize}`, `compat=${o.compat}`, ...(o.extendedL2 ? ['extended_l2=on'] : []), ...(o.compat === '1.1' ? [`compression_type=${o.compression}`] : [])].join(',');
}

function convertOptions(t: ConvertTarget): string {
  switch (t.format) {
    case 'vmdk':
      return `subformat=${t.subformat}`;
    case 'vhdx':
      return `subformat=${t.subformat},block_size=${t.blockSize}`;
    case 'vpc':
      return `subformat=${t.subformat}`;
    case 'vdi':
      return `static=${t.static ? 'on' : 'off'}`;
  }
}

export interface ImageScript {
  /** argv lists, run in order in one directory. */
  commands: string[][];
  /** The image to compare, and its format. */
  image: string;
  format: string;
}

/** The commands that build a case, file names relative to the directory they run in. */
export function scriptOf(c: ImageCase): ImageScript {
  const commands: string[][] = [];
  if (c.kind === 'chain') {
    c.layers.forEach((layer, n) => {
      const file = `layer${n}.${layer.format}`;
      const create = ['qemu-img', 'create', '-q', '-f', layer.format];
      if (layer.qcow2) create.push('-o', qcow2CreateOptions(layer.qcow2));
      if (n > 0) {
        const below = c.layers[n - 1];
        create.push('-F', below.format, '-b', `layer${n - 1}.${below.format}`);
      }
      commands.push([...create, file, String(layer.size)]);
      commands.push(...qemuIo(file, layer.format, layer.writes, layer.qcow2?.clusterSize));
    });
    const top = c.layers.length - 1;
    return { commands, image: `layer${top}.${c.layers[top].format}`, format: c.layers[top].format };
  }
  const image = `disk.${c.target.format}`;
  commands.push(['qemu-img', 'create', '-q', '-f', 'raw', 'source.raw', String(c.size)]);
  commands.push(...qemuIo('source.raw', 'raw', c.raw));
  commands.push(['qemu-img', 'convert', '-q', '-f', 'raw', '-O', c.target.format, '-o', convertOptions(c.target), 'source.raw', image]);
  commands.push(...qemuIo(image, c.target.format, c.direct));
  return { commands, image, format: c.target.format };
}

/** The script as shell lines, for a counterexample. */
export function scriptText(s: ImageScript, dir = '.'): string {
  return [`cd ${shellLine([dir])}`, ...s.commands.map(shellLine), `# compare: qemu-img convert -f ${s.format} -O raw ${s.image} ref.raw; guestlens image cat ${s.image} | cmp - ref.raw`].join('\n');
}

/** Run the script in `dir`. qemu-io reports a failed command on stdout and still exits 0, so its output is checked too. */
export async function runScript(s: ImageScript, dir: string): Promise<void> {
  for (const [tool, ...args] of s.commands) {
    const out = await sh(tool, args, { cwd: dir });
    if (tool === 'qemu-io' && /failed|error/i.test(out)) throw new Error(`${shellLine([tool, ...args])}: ${out}`);
  }
}
