/**
 * The overlay's backing reference: a `json:` pseudo-filename that opens the
 * guest image with an explicit driver and with locking off, so a VM's locks
 * neither stop us nor get disturbed. qemu-img stores it verbatim in the
 * overlay's header, where every QEMU tool (and our qcow2 reader) finds it.
 *
 *   json:{"driver":FMT,"file":{"driver":"file","filename":ABSOLUTE,"locking":"off"}}
 *
 * JSON.stringify does all quoting, so any path (spaces, commas, quotes,
 * backslashes, newlines, non-ASCII, leading dashes) round-trips; given with
 * `-b` the string needs no comma doubling. Two additions, only when needed:
 * a block device is opened with the `host_device` driver (`file` refuses
 * one), and a qcow2 external data file gets its own locking-off node.
 */

/** QEMU keeps a qcow2 backing file name in at most 1023 bytes. */
export const MAX_BACKING_NAME_BYTES = 1023;

export interface BackingTarget {
  /** The format driver: raw, qcow2, vmdk, vdi, vhdx, vpc. */
  format: string;
  /** Absolute path of the image. */
  filename: string;
  /** The image is a block device (host_device driver). */
  blockDevice?: boolean;
  /** Absolute path of a qcow2 external data file, opened with locking off too. */
  dataFile?: string;
}

export function backingJson(target: BackingTarget): string {
  const node: Record<string, unknown> = {
    driver: target.format,
    file: { driver: target.blockDevice ? 'host_device' : 'file', filename: target.filename, locking: 'off' },
  };
  if (target.dataFile !== undefined) node['data-file'] = { driver: 'file', filename: target.dataFile, locking: 'off' };
  return `json:${JSON.stringify(node)}`;
}

/** What a backing file name stored in an image refers to, as far as guestlens follows it. */
export type BackingReference =
  | { kind: 'path'; path: string }
  | { kind: 'json'; path: string; format?: string; lockingOff: boolean; dataFile?: string; blockDevice: boolean }
  | { kind: 'unsupported'; reason: string };

/**
 * Classify a backing file name the way QEMU reads it: `json:{...}` options,
 * a `protocol:` prefix (anything before the first ':' with no '/' in it), or
 * a plain path. Only local files are followed: json: references of the shape
 * `backingJson` writes (or a bare file node), `file:` prefixes and plain paths.
 */
export function parseBackingReference(name: string): BackingReference {
  if (name.startsWith('json:')) return parseJsonReference(name.slice(5));
  const colon = name.indexOf(':');
  if (colon > 0 && !name.slice(0, colon).includes('/')) {
    const protocol = name.slice(0, colon);
    if (protocol === 'file') return { kind: 'path', path: name.slice(colon + 1) };
    return { kind: 'unsupported', reason: `it uses the "${protocol}:" protocol, and guestlens only follows local files` };
  }
  return { kind: 'path', path: name };
}

function parseJsonReference(text: string): BackingReference {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'unsupported', reason: 'its json: options are not valid JSON' };
  }
  if (!isObject(value)) return { kind: 'unsupported', reason: 'its json: options are not an object' };
  // A bare protocol node: {"driver":"file","filename":...}
  const bare = fileNode(value);
  if (bare) return { kind: 'json', path: bare.filename, lockingOff: bare.lockingOff, blockDevice: bare.blockDevice };
  const known = new Set(['driver', 'file', 'data-file']);
  const extra = Object.keys(value).filter((k) => !known.has(k));
  if (typeof value.driver !== 'string' || extra.length > 0) {
    return { kind: 'unsupported', reason: `its json: options ${extra.length ? `(${extra.join(', ')}) ` : ''}are not a format node over a local file` };
  }
  const file = isObject(value.file) ? fileNode(value.file) : undefined;
  if (!file) return { kind: 'unsupported', reason: 'its json: "file" is not a local file node' };
  let dataFile: string | undefined;
  if (value['data-file'] !== undefined) {
    const df = isObject(value['data-file']) ? fileNode(value['data-file']) : undefined;
    if (!df) return { kind: 'unsupported', reason: 'its json: "data-file" is not a local file node' };
    dataFile = df.filename;
  }
  return { kind: 'json', path: file.filename, format: value.driver, lockingOff: file.lockingOff, dataFile, blockDevice: file.blockDevice };
}

function fileNode(v: Record<string, unknown>): { filename: string; lockingOff: boolean; blockDevice: boolean } | undefined {
  if ((v.driver !== 'file' && v.driver !== 'host_device') || typeof v.filename !== 'string') return undefined;
  const known = new Set(['driver', 'filename', 'locking']);
  if (Object.keys(v).some((k) => !known.has(k))) return undefined;
  return { filename: v.filename, lockingOff: v.locking === 'off' || v.locking === false, blockDevice: v.driver === 'host_device' };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
