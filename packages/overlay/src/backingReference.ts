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
 *
 * Reading a backing name back is the reader's job (qcow2-js's
 * resolveBackingName, the one parser of QEMU's backing names);
 * `parseBackingReference` is the overlay's view of its answer.
 */
import { flattenOptions, parseQemuJson, Qcow2Error, resolveBackingName } from '@guestlens/qcow2-js';

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

/** What a backing file name stored in an image refers to, as far as the overlay's chain walk follows it. */
export type BackingReference =
  | { kind: 'path'; path: string }
  | { kind: 'json'; path: string; format?: string; lockingOff: boolean; dataFile?: string; blockDevice: boolean }
  | { kind: 'unsupported'; reason: string };

/**
 * Classify a backing file name the way QEMU reads it. Only local files are
 * followed; json: options that change the chain itself (an explicit backing,
 * a raw window) are not, because qemu-img info, which the walk also asks,
 * would not see them.
 */
export function parseBackingReference(name: string): BackingReference {
  let spec;
  try {
    // An image path of '' keeps a relative name relative: the walk resolves it against the image's directory.
    spec = resolveBackingName(name, '', undefined, '');
  } catch (err) {
    if (err instanceof Qcow2Error) return { kind: 'unsupported', reason: reasonOf(err.detail) };
    throw err;
  }
  if (!name.startsWith('json:')) return { kind: 'path', path: spec.filename };
  if (spec.backing !== undefined) return { kind: 'unsupported', reason: 'its json: options replace the backing chain ("backing"), which guestlens does not follow' };
  if (spec.offset !== undefined || spec.size !== undefined) return { kind: 'unsupported', reason: 'its json: options make a window of a raw file (offset/size), which guestlens does not follow' };
  // How the file node is opened does not change the bytes, so the parser above leaves it out; the overlay reports it.
  const options = flattenOptions(parseQemuJson(name.slice('json:'.length)) as Parameters<typeof flattenOptions>[0]);
  const protocol = options.has('file.driver') ? 'file.' : '';
  const locking = options.get(`${protocol}locking`);
  return {
    kind: 'json',
    path: spec.filename,
    format: spec.format,
    lockingOff: locking === 'off' || locking === false,
    dataFile: spec.dataFile,
    blockDevice: options.get(`${protocol}driver`) === 'host_device',
  };
}

/** The reader's detail ("backing file "x" uses the "nbd" protocol; ...") as a reason after "which guestlens refuses: ". */
function reasonOf(detail: string): string {
  return detail.replace(/^backing file .*? (uses|sets|names|refers|is)\b/, 'it $1');
}
