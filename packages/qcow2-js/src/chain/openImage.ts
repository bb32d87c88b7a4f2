/**
 * Open an image file by path with its whole backing chain resolved, as QEMU
 * would open it: each level's format from the caller, the level above, or
 * the format table's probe; each file a level names judged by the backing
 * policy before it is opened; chain depth and loops bounded so a hostile
 * image costs little. Every file is opened read-only.
 */
import type { BlockSource } from '@guestlens/block';
import { DEFAULT_MAX_READ_BYTES } from '@guestlens/block';
import type { LayerSpec } from './backingName.ts';
import { BackingPolicyCheck, missingFileError, roleOf, type BackingPolicy, type ReferencedFile } from './backingPolicy.ts';
import { chainError, unsupportedError } from '../errors.ts';
import { RawFileSource } from '../file/rawFile.ts';
import { PROBE_HEAD_BYTES, PROBE_TAIL_BYTES } from '../formats/probe.ts';
import { formatDriver, probeDriver, KNOWN_FORMATS } from '../formats/table.ts';
import type { FormatOpenContext, ImageFormatDriver, ImageLayer } from '../formats/layer.ts';
import { UnreadableImage } from '../formats/unreadable/unreadableImage.ts';
import { createChainCache, DEFAULT_L2_CACHE_BYTES, type ChainCache } from '../metadataCache.ts';

/** Deep enough for long snapshot chains, shallow enough that a hostile chain costs little. */
export const DEFAULT_MAX_CHAIN_DEPTH = 128;

export interface OpenImageOptions {
  /** The top image's format; without it the format table's probe decides, and anything unrecognised is raw. */
  format?: string;
  /** How errors name the top layer (default: the path); the overlay names the user's image here. */
  name?: string;
  allowExternalDataFile?: boolean;
  /** Which files an image may name besides itself (see backingPolicy.ts); default 'allow'. */
  backingPolicy?: BackingPolicy;
  maxChainDepth?: number;
  /** Memory for cached L2 tables, shared by the whole chain. */
  cacheBytes?: number;
  maxReadBytes?: number;
}

/** Protocol drivers a json: reference may use for a local file: the bytes are read raw. */
const PROTOCOL_FORMATS = new Set(['file', 'host_device', 'host_cdrom']);

interface ChainContext {
  options: OpenImageOptions;
  policy: BackingPolicyCheck;
  cache: ChainCache;
  /** Files already in the chain, by device and inode. */
  seen: Set<string>;
}

/** Open `path` with its chain as a block source of guest bytes. */
export async function openImage(path: string, options: OpenImageOptions = {}): Promise<ImageLayer> {
  const ctx: ChainContext = {
    options,
    policy: await BackingPolicyCheck.for(options.backingPolicy, path),
    cache: createChainCache(options.cacheBytes ?? DEFAULT_L2_CACHE_BYTES),
    seen: new Set(),
  };
  return openLayer({ format: options.format, filename: path }, ctx, 0, undefined, options.name);
}

/** The layers of an opened image, top first. */
export function imageChain(top: ImageLayer): ImageLayer[] {
  const chain: ImageLayer[] = [];
  for (let layer: ImageLayer | undefined = top; layer; layer = layer.backing) chain.push(layer);
  return chain;
}

async function openLayer(spec: LayerSpec, ctx: ChainContext, depth: number, referrer: ReferencedFile | undefined, name = spec.filename): Promise<ImageLayer> {
  const maxDepth = ctx.options.maxChainDepth ?? DEFAULT_MAX_CHAIN_DEPTH;
  if (referrer && depth > maxDepth) {
    throw chainError(referrer.image, `backing chain is deeper than ${maxDepth} images (next: ${JSON.stringify(referrer.name)})`, 'a chain this deep is likely hostile; raise maxChainDepth if it is not');
  }
  const file = await openFile(spec.filename, referrer, name);
  try {
    if (ctx.seen.has(file.identity)) {
      throw chainError(referrer?.image ?? spec.filename, `backing chain loops: ${JSON.stringify(referrer?.name ?? spec.filename)} (${spec.filename}) is already part of the chain`);
    }
    ctx.seen.add(file.identity);
    const driver = await driverFor(spec, file, referrer);
    if (!driver.open) return new UnreadableImage(file, driver.format, name, driver.unreadable ?? `in ${driver.format} format`);
    return await driver.open(file, formatContext(spec, ctx, depth, name));
  } catch (err) {
    await file.close();
    throw err;
  }
}

function formatContext(spec: LayerSpec, ctx: ChainContext, depth: number, name: string): FormatOpenContext {
  return {
    name,
    spec,
    cache: ctx.cache,
    maxReadBytes: ctx.options.maxReadBytes ?? DEFAULT_MAX_READ_BYTES,
    openBacking: async (ref, child) => {
      await ctx.policy.check(ref);
      return openLayer(child, ctx, depth + 1, ref);
    },
    openDataFile: async (ref) => {
      if (!ctx.options.allowExternalDataFile) {
        throw chainError(ref.image, `keeps its guest data in the external data file ${JSON.stringify(ref.name)} (${ref.path}), which is not allowed`, 'check that file is the one you expect, then allow external data files (--allow-external-data-file)');
      }
      await ctx.policy.check(ref);
      const file = await openFile(ref.path, ref, ref.path);
      if (ctx.seen.has(file.identity)) {
        await file.close();
        throw chainError(ref.image, `external data file ${ref.path} is a file already in the chain`);
      }
      ctx.seen.add(file.identity);
      return file;
    },
    openExtent: async (ref) => {
      await ctx.policy.check(ref);
      return openFile(ref.path, ref, ref.path);
    },
  };
}

/** The driver for a layer: the format asked for, or, without one, the probe's answer. */
async function driverFor(spec: LayerSpec, file: RawFileSource, referrer: ReferencedFile | undefined): Promise<ImageFormatDriver> {
  if (spec.format !== undefined) {
    const asked = PROTOCOL_FORMATS.has(spec.format) ? 'raw' : spec.format;
    const driver = formatDriver(asked);
    if (!driver) {
      const whose = referrer ? `${roleOf(referrer.kind)} ${spec.filename}` : 'the image';
      throw unsupportedError(referrer?.image ?? spec.filename, `${whose} is in ${JSON.stringify(spec.format)} format, which guestlens does not know (known: ${KNOWN_FORMATS.join(', ')})`);
    }
    return driver;
  }
  const head = await file.read(0, Math.min(PROBE_HEAD_BYTES, file.size));
  const tail = file.size > PROBE_HEAD_BYTES ? await file.read(file.size - PROBE_TAIL_BYTES, PROBE_TAIL_BYTES) : head;
  return probeDriver(head, tail, spec.filename);
}

async function openFile(path: string, referrer: ReferencedFile | undefined, name: string): Promise<RawFileSource> {
  try {
    return await RawFileSource.open(path, name);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (referrer && typeof code === 'string') throw missingFileError(referrer, code);
    throw err;
  }
}

export type { BlockSource };
