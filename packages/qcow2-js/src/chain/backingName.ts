/**
 * What a backing file name stored in a qcow2 header asks for, resolved as
 * QEMU resolves it (block.c bdrv_open_backing_file / bdrv_fill_options):
 *
 *  - a plain name: absolute, or relative to the directory of the image that
 *    names it (the path it was opened by, symlinks not resolved);
 *  - `file:NAME`: the file protocol, NAME relative to the working directory;
 *  - `json:{...}`: options, flattened to dotted keys; a relative filename
 *    inside is relative to the working directory (QEMU does not combine it);
 *  - any other `proto:` prefix (nbd:, rbd:, http:, ...) is a network or
 *    special protocol, which guestlens does not read.
 *
 * The header's backing-format extension wins over a "driver" inside the JSON
 * (QEMU joins the JSON options under the explicit ones without overwriting).
 */
import { dirname, isAbsolute, join } from 'node:path';
import { unsupportedError } from '../errors.ts';
import { QemuJsonError, flattenOptions, parseQemuJson, type FlatOptions } from './qemuJson.ts';

/** A layer to open: a format driver over a local file. */
export interface LayerSpec {
  /** 'qcow2', 'raw', or another format name (refused when opened); undefined: probe the file. */
  format?: string;
  /** Path of the file, absolute or relative to the working directory. */
  filename: string;
  /** Raw driver options: the guest disk is `size` bytes from `offset` of the file. */
  offset?: number;
  size?: number;
  /** Explicit backing from the JSON: null for "no backing file", a spec to replace the header's. */
  backing?: LayerSpec | null;
  /** A qcow2 external data file named by the JSON (it replaces the header's name): a local file path. */
  dataFile?: string;
}

const PROTOCOL_DRIVERS = new Set(['file', 'host_device', 'host_cdrom']);

/** Options that change how QEMU opens or caches a node but not a byte the guest reads. */
const HARMLESS_NODE_OPTIONS = new Set([
  'node-name',
  'read-only',
  'auto-read-only',
  'discard',
  'detect-zeroes',
  'force-share',
  'cache.direct',
  'cache.no-flush',
  // qcow2 driver tuning
  'lazy-refcounts',
  'pass-discard-request',
  'pass-discard-snapshot',
  'pass-discard-other',
  'discard-no-unref',
  'overlap-check',
  'cache-size',
  'l2-cache-size',
  'l2-cache-entry-size',
  'refcount-cache-size',
  'cache-clean-interval',
]);
const HARMLESS_PROTOCOL_OPTIONS = new Set([...HARMLESS_NODE_OPTIONS, 'locking', 'aio', 'aio-max-batch', 'x-check-cache-dropped', 'drop-cache', 'pr-manager']);

/**
 * The layer a backing file name stored in `image` (opened as `imagePath`)
 * asks for. `backingFormat` is the header's backing-format extension.
 */
export function resolveBackingName(name: string, imagePath: string, backingFormat: string | undefined, image: string): LayerSpec {
  let options: FlatOptions;
  if (name.startsWith('json:')) {
    options = parseJsonName(name, image);
  } else {
    const protocol = protocolOf(name);
    if (protocol === undefined) options = new Map([['filename', isAbsolute(name) ? name : join(dirname(imagePath), name)]]);
    else if (protocol === 'file') options = new Map([['filename', name.slice('file:'.length)]]);
    else throw unsupportedProtocol(image, name, protocol);
  }
  if (backingFormat) options.set('driver', backingFormat);
  return layerFromOptions(options, '', name, image);
}

function parseJsonName(name: string, image: string): FlatOptions {
  let parsed;
  try {
    parsed = parseQemuJson(name.slice('json:'.length));
  } catch (err) {
    if (err instanceof QemuJsonError) throw unsupportedError(image, `backing file name ${quote(name)} is not valid JSON: ${err.message}`);
    throw err;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw unsupportedError(image, `backing file name ${quote(name)} is not a JSON object`);
  try {
    return flattenOptions(parsed);
  } catch (err) {
    if (err instanceof QemuJsonError) throw unsupportedError(image, `backing file name ${quote(name)}: ${err.message}`);
    throw err;
  }
}

/** QEMU's path_has_protocol: a colon before any slash. */
function protocolOf(name: string): string | undefined {
  const stop = name.search(/[:/]/);
  return stop > 0 && name[stop] === ':' ? name.slice(0, stop) : undefined;
}

/** The options under `prefix` (e.g. "backing.") describe one node. */
function layerFromOptions(all: FlatOptions, prefix: string, name: string, image: string): LayerSpec {
  const get = (key: string) => all.get(prefix + key);
  const used = new Set<string>();
  const take = (key: string) => {
    used.add(prefix + key);
    return get(key);
  };

  const driver = optString(take('driver'), 'driver', name, image);
  let spec: LayerSpec;
  if (driver !== undefined && PROTOCOL_DRIVERS.has(driver)) {
    // A protocol node used directly as the backing: its bytes are the disk.
    const filename = optString(take('filename'), 'filename', name, image);
    if (filename === undefined) throw unsupportedError(image, `backing file ${quote(name)} names no filename`);
    spec = { format: 'raw', filename };
    checkRest(all, prefix, used, HARMLESS_PROTOCOL_OPTIONS, name, image);
    return spec;
  }

  const fileChild = take('file');
  if (typeof fileChild === 'string') throw unsupportedError(image, `backing file ${quote(name)} refers to a block node (${quote(fileChild)}); only files can be read`);
  const fileDriver = optString(take('file.driver'), 'file.driver', name, image);
  if (fileDriver !== undefined && !PROTOCOL_DRIVERS.has(fileDriver)) throw unsupportedProtocol(image, name, fileDriver);
  let filename = optString(take('file.filename'), 'file.filename', name, image) ?? optString(take('filename'), 'filename', name, image);
  if (filename === undefined) throw unsupportedError(image, `backing file ${quote(name)} names no file (guestlens reads only local files)`);
  if (fileDriver === undefined) {
    const protocol = protocolOf(filename);
    if (protocol === 'file') filename = filename.slice('file:'.length);
    else if (protocol !== undefined) throw unsupportedProtocol(image, name, protocol);
  }
  spec = { format: driver, filename };

  if ([...all.keys()].some((k) => k.startsWith(`${prefix}data-file.`))) {
    const dataDriver = optString(take('data-file.driver'), 'data-file.driver', name, image);
    if (dataDriver !== undefined && dataDriver !== 'file') throw unsupportedProtocol(image, name, dataDriver);
    const dataName = optString(take('data-file.filename'), 'data-file.filename', name, image);
    if (dataName === undefined) throw unsupportedError(image, `backing file ${quote(name)} names a data-file node without a filename`);
    spec.dataFile = dataName;
    for (const k of all.keys()) {
      if (!k.startsWith(`${prefix}data-file.`) || used.has(k)) continue;
      if (HARMLESS_PROTOCOL_OPTIONS.has(k.slice(prefix.length + 'data-file.'.length))) used.add(k);
    }
  }

  if (driver === 'raw') {
    const offset = optNumber(take('offset'), 'offset', name, image);
    const size = optNumber(take('size'), 'size', name, image);
    if (offset !== undefined) spec.offset = offset;
    if (size !== undefined) spec.size = size;
  }

  const backing = get('backing');
  if (all.has(prefix + 'backing')) {
    used.add(prefix + 'backing');
    if (backing === null) spec.backing = null;
    else throw unsupportedError(image, `backing file ${quote(name)} refers to a block node as its backing (${quote(String(backing))}); only files can be read`);
  } else if ([...all.keys()].some((k) => k.startsWith(`${prefix}backing.`))) {
    spec.backing = layerFromOptions(all, `${prefix}backing.`, name, image);
    for (const k of all.keys()) if (k.startsWith(`${prefix}backing.`)) used.add(k);
  }

  for (const k of all.keys()) {
    if (!k.startsWith(prefix + 'file.') || used.has(k)) continue;
    const option = k.slice(prefix.length + 'file.'.length);
    if (HARMLESS_PROTOCOL_OPTIONS.has(option) || option.startsWith('cache.')) used.add(k);
  }
  checkRest(all, prefix, used, HARMLESS_NODE_OPTIONS, name, image);
  return spec;
}

function checkRest(all: FlatOptions, prefix: string, used: Set<string>, harmless: Set<string>, name: string, image: string): void {
  for (const key of all.keys()) {
    if (!key.startsWith(prefix) || used.has(key)) continue;
    const option = key.slice(prefix.length);
    if (harmless.has(option) || option.startsWith('overlap-check.') || option.startsWith('cache.')) continue;
    throw unsupportedError(image, `backing file ${quote(name)} sets option ${quote(key)}, which guestlens does not support`);
  }
}

function optString(value: unknown, key: string, name: string, image: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw unsupportedError(image, `backing file ${quote(name)}: option ${quote(key)} must be a string`);
  return value;
}

function optNumber(value: unknown, key: string, name: string, image: string): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw unsupportedError(image, `backing file ${quote(name)}: option ${quote(key)} must be a byte count`);
  return n;
}

function unsupportedProtocol(image: string, name: string, protocol: string) {
  return unsupportedError(image, `backing file ${quote(name)} uses the ${quote(protocol)} protocol; guestlens reads only local files`);
}

function quote(s: string): string {
  return JSON.stringify(s);
}
