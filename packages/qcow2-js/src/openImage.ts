/**
 * Open an image file by path with its whole backing chain resolved: qcow2
 * layers over qcow2 or raw layers, as QEMU would open them, with the limits
 * that keep a hostile image harmless (chain depth, loops) and the caller's
 * policy on which files an image may make us read.
 */
import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { BlockSource } from './blockSource.ts';
import { resolveBackingName, type LayerSpec } from './backingName.ts';
import { chainError, unsupportedError } from './errors.ts';
import { probeFormat, PROBE_HEAD_BYTES } from './formatProbe.ts';
import { QCOW2_MAGIC } from './header.ts';
import { createChainCache, DEFAULT_L2_CACHE_BYTES, type ChainCache } from './metadataCache.ts';
import { Qcow2Image } from './qcow2Image.ts';
import { RawFileSource } from './rawFile.ts';
import { RawImage } from './rawImage.ts';

/** Deep enough for long snapshot chains, shallow enough that a hostile chain costs little. */
export const DEFAULT_MAX_CHAIN_DEPTH = 128;

/** A file an image names: its backing file or its external data file. */
export interface ReferencedFile {
  kind: 'backing' | 'data-file';
  /** The image that names it. */
  image: string;
  /** The name as stored in the image. */
  name: string;
  /** The path it resolves to (absolute, or relative to the working directory). */
  path: string;
  /** The format asked for, when one is. */
  format?: string;
}

/**
 * Which files named inside an image may be opened (the same words as the
 * overlay package and the CLI's --backing):
 *  - 'allow' (default, QEMU's behaviour): any local file;
 *  - 'same-dir': only files inside the top image's directory or below it, after symlinks;
 *  - 'none': no other file at all (an image that names one is refused);
 *  - a function: called before each one is opened; throw to refuse it.
 * 'follow' and 'same-directory' are accepted as older spellings of 'allow' and 'same-dir'.
 * External data files are refused unless `allowExternalDataFile` is set, whatever the policy.
 */
export type BackingPolicy = 'allow' | 'same-dir' | 'none' | 'follow' | 'same-directory' | ((file: ReferencedFile) => void | Promise<void>);

function normalisePolicy(policy: BackingPolicy | undefined): Exclude<BackingPolicy, 'follow' | 'same-directory'> {
  if (policy === undefined || policy === 'follow') return 'allow';
  if (policy === 'same-directory') return 'same-dir';
  return policy;
}

export interface OpenImageOptions {
  /** The top image's format; without it, qcow2 magic means qcow2 and anything else raw. */
  format?: 'qcow2' | 'raw';
  allowExternalDataFile?: boolean;
  backingPolicy?: BackingPolicy;
  maxChainDepth?: number;
  /** Memory for cached L2 tables, shared by the whole chain. */
  cacheBytes?: number;
  maxReadBytes?: number;
}

export type ImageLayer = Qcow2Image | RawImage;

interface ChainContext {
  options: OpenImageOptions;
  cache: ChainCache;
  /** Files already in the chain, by device and inode. */
  seen: Set<string>;
  topDirectory?: string;
}

/** Open `path` (qcow2 with its chain, or raw) as a block source of guest bytes. Every file is opened read-only. */
export async function openImage(path: string, options: OpenImageOptions = {}): Promise<ImageLayer> {
  const ctx: ChainContext = { options: { ...options, backingPolicy: normalisePolicy(options.backingPolicy) }, cache: createChainCache(options.cacheBytes ?? DEFAULT_L2_CACHE_BYTES), seen: new Set() };
  if (ctx.options.backingPolicy === 'same-dir') ctx.topDirectory = await realpath(dirname(path));
  return openLayer({ format: options.format, filename: path }, ctx, 0, undefined);
}

/** The layers of an opened image, top first. */
export function imageChain(top: BlockSource): BlockSource[] {
  const chain: BlockSource[] = [];
  for (let layer: BlockSource | undefined = top; layer; layer = layer instanceof Qcow2Image ? layer.backing : undefined) chain.push(layer);
  return chain;
}

async function openLayer(spec: LayerSpec, ctx: ChainContext, depth: number, referrer: ReferencedFile | undefined): Promise<ImageLayer> {
  const maxDepth = ctx.options.maxChainDepth ?? DEFAULT_MAX_CHAIN_DEPTH;
  if (referrer && depth > maxDepth) {
    throw chainError(referrer.image, `backing chain is deeper than ${maxDepth} images (next: ${JSON.stringify(referrer.name)})`, 'a chain this deep is likely hostile; raise maxChainDepth if it is not');
  }
  const file = await openFile(spec.filename, referrer);
  try {
    if (ctx.seen.has(file.identity)) {
      throw chainError(referrer?.image ?? spec.filename, `backing chain loops: ${JSON.stringify(referrer?.name ?? spec.filename)} (${spec.filename}) is already part of the chain`);
    }
    ctx.seen.add(file.identity);
    const format = spec.format ?? (await probe(file, referrer !== undefined));
    if (format === 'raw' || format === 'file' || format === 'host_device') return new RawImage(file, { offset: spec.offset, size: spec.size }, undefined, ctx.options.maxReadBytes);
    if (format !== 'qcow2') {
      throw unsupportedError(referrer?.image ?? spec.filename, `${referrer ? `backing file ${spec.filename}` : 'the image'} is in ${JSON.stringify(format)} format; guestlens reads qcow2 and raw`, undefined, 'convert it with qemu-img convert -O qcow2, or read it through an overlay with QEMU');
    }
    const image = await Qcow2Image.open(file, { name: spec.filename, cache: ctx.cache, maxReadBytes: ctx.options.maxReadBytes });
    try {
      await attachDataFile(image, spec, ctx);
      await attachBacking(image, spec, ctx, depth);
    } catch (err) {
      await image.close();
      throw err;
    }
    return image;
  } catch (err) {
    await file.close();
    throw err;
  }
}

async function attachDataFile(image: Qcow2Image, spec: LayerSpec, ctx: ChainContext): Promise<void> {
  if (!image.hasDataFile) return;
  const name = image.header.dataFileName ?? '';
  // QEMU opens the name from the header as a plain file name (never json: or a protocol) and,
  // unlike a backing file name, does not resolve a relative one against the image's directory.
  const path = resolve(name);
  const ref: ReferencedFile = { kind: 'data-file', image: image.name, name, path };
  if (!ctx.options.allowExternalDataFile) {
    throw chainError(image.name, `keeps its guest data in the external data file ${JSON.stringify(name)} (${path}), which is not allowed`, 'check that file is the one you expect, then allow external data files (--allow-external-data-file)');
  }
  await checkPolicy(ref, ctx);
  const file = await openFile(path, ref);
  if (ctx.seen.has(file.identity)) {
    await file.close();
    throw chainError(image.name, `external data file ${path} is a file already in the chain`);
  }
  ctx.seen.add(file.identity);
  image.dataFile = file;
}

async function attachBacking(image: Qcow2Image, spec: LayerSpec, ctx: ChainContext, depth: number): Promise<void> {
  const storedName = image.header.backingFileName;
  let child: LayerSpec | null | undefined = spec.backing;
  if (child === undefined) child = storedName === undefined ? null : resolveBackingName(storedName, spec.filename, image.header.backingFormat, image.name);
  if (child === null) return;
  const ref: ReferencedFile = { kind: 'backing', image: image.name, name: storedName ?? child.filename, path: child.filename, format: child.format };
  await checkPolicy(ref, ctx);
  image.backing = await openLayer(child, ctx, depth + 1, ref);
}

async function checkPolicy(ref: ReferencedFile, ctx: ChainContext): Promise<void> {
  const policy = normalisePolicy(ctx.options.backingPolicy);
  if (policy === 'allow') return;
  if (typeof policy === 'function') {
    await policy(ref);
    return;
  }
  const what = ref.kind === 'backing' ? 'backing file' : 'external data file';
  if (policy === 'none') {
    throw chainError(ref.image, `names the ${what} ${JSON.stringify(ref.name)} (${ref.path}); the backing policy "none" refuses every file an image names`, 'use the policy "same-dir" or "allow" if you trust this image');
  }
  let resolved: string;
  try {
    resolved = await realpath(ref.path);
  } catch {
    // Missing files are reported when opened.
    return;
  }
  const top = ctx.topDirectory ?? '/';
  const rel = relative(top, resolved);
  if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
    throw chainError(ref.image, `names the ${what} ${JSON.stringify(ref.name)} (${resolved}), outside the image's directory ${top}; the backing policy "same-dir" refuses it`, 'use the policy "allow" if you trust this image');
  }
}

async function openFile(path: string, referrer: ReferencedFile | undefined): Promise<RawFileSource> {
  try {
    return await RawFileSource.open(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (referrer && typeof code === 'string') {
      const what = referrer.kind === 'backing' ? 'backing file' : 'external data file';
      throw chainError(referrer.image, `cannot open its ${what} ${JSON.stringify(referrer.name)} (${path}): ${code}`, code === 'ENOENT' ? 'was the chain moved? qemu-img rebase -u can repoint it' : undefined);
    }
    throw err;
  }
}

/** The format of a file opened without one: qcow2 by magic; for backing files, other known formats are refused, not read raw. */
async function probe(file: RawFileSource, isBacking: boolean): Promise<string> {
  const head = await file.read(0, Math.min(PROBE_HEAD_BYTES, file.size));
  if (head.length >= 8 && head.readUInt32BE(0) === QCOW2_MAGIC) {
    // Versions other than 2 and 3 are refused by the header parser, by name.
    return head.readUInt32BE(4) === 1 ? 'qcow' : 'qcow2';
  }
  if (!isBacking) return 'raw';
  // QEMU probes a backing file named without a format; reading a vmdk as raw would give wrong bytes.
  return probeFormat(head);
}
