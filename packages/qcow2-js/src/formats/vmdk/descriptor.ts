/**
 * The VMDK text descriptor, read the way QEMU 7.2's block/vmdk.c reads it,
 * because QEMU's reading decides which files a VMDK makes qemu-img open:
 *
 *  - `createType`, `CID`, `parentCID`, `parentFileNameHint` are found by
 *    substring search (strstr), the first occurrence wins, anywhere in the
 *    text; CID and the parent hint only in the first 10 KiB of it;
 *  - extent lines are matched from the start of each line by
 *    sscanf("%10s %lld %10s \"%511[^\n\r\"]\" %lld"), which skips any
 *    whitespace, newlines included: an "RW" alone on a line followed by a
 *    line `100 FLAT "x" 0` is one extent. Only access "RW" lines are
 *    extents (QEMU 7.2 ignores RDONLY and NOACCESS lines), only
 *    FLAT/SPARSE/VMFS/VMFSSPARSE/SESPARSE types; a wrong field count for a
 *    known access and type is an invalid descriptor, not a skipped line;
 *  - an extent file name is absolute when, after an optional "proto:"
 *    prefix, it starts with '/' (QEMU's path_is_absolute); otherwise it is
 *    relative to the descriptor's directory. A "file:" prefix is the file
 *    protocol; any other prefix would make QEMU open a network or special
 *    protocol, which guestlens refuses.
 *
 * This is the one parser: the reader, the named-files walk and the overlay's
 * chain walk all use it, so what is judged is what is opened.
 */
import { dirname, join } from 'node:path';
import { formatError, unsupportedError } from '../../errors.ts';

/** QEMU reads at most 1 MiB of a text descriptor. */
export const MAX_VMDK_DESCRIPTOR = (1 << 20) - 1;
/** QEMU reads CID, parentCID and parentFileNameHint from the first 20 sectors of the descriptor. */
export const DESC_WINDOW = 20 * 512;
/** Extents one descriptor may name (16 TiB in 2 GiB extents); beyond this a descriptor is hostile or absurd. */
export const MAX_VMDK_EXTENTS = 8192;
export const DESCRIPTOR_MAGIC = '# Disk DescriptorFile';

export const EXTENT_TYPES = ['FLAT', 'SPARSE', 'VMFS', 'VMFSSPARSE', 'SESPARSE'] as const;
export type ExtentType = (typeof EXTENT_TYPES)[number];

export interface ExtentLine {
  type: ExtentType;
  sectors: number;
  /** The file name as stored. */
  name: string;
  /** FLAT: the extent's first sector in its file. */
  flatOffset: number;
  /** Offset of the line in the descriptor (for messages). */
  at: number;
}

export interface Descriptor {
  createType?: string;
  extents: ExtentLine[];
}

const SPACE = new Set([' ', '\t', '\n', '\v', '\f', '\r']);

/** The text QEMU sees: up to the first NUL. */
export function descriptorText(bytes: Buffer): string {
  const nul = bytes.indexOf(0);
  return bytes.toString('latin1', 0, nul < 0 ? bytes.length : nul);
}

/** QEMU's vmdk_probe: a sparse magic, or a text whose first line other than comments and blanks is "version=1|2|3". */
export function looksLikeVmdk(head: Buffer): boolean {
  if (head.length < 4) return false;
  const magic = head.toString('latin1', 0, 4);
  if (magic === 'KDMV' || magic === 'COWD') return true;
  const text = head.toString('latin1');
  let p = 0;
  while (p < text.length) {
    if (text[p] === '#') {
      const nl = text.indexOf('\n', p);
      if (nl < 0) return false;
      p = nl + 1;
      continue;
    }
    if (text[p] === ' ') {
      while (p < text.length && text[p] === ' ') p++;
      if (p < text.length && text[p] === '\r') p++;
      if (p >= text.length || text[p] !== '\n') return false;
      p++;
      continue;
    }
    return /^version=[123]\r?\n/.test(text.slice(p, p + 11));
  }
  return false;
}

/** A value after `key` the way vmdk_parse_description finds it: key, two characters (`="`), then up to the next quote. */
export function descriptionValue(text: string, key: string, maxLength = 127): string | undefined {
  const at = text.indexOf(key);
  if (at < 0) return undefined;
  const from = at + key.length + 2;
  if (from >= text.length) return undefined;
  const end = text.indexOf('"', from);
  if (end < 0 || end - from > maxLength) return undefined;
  return text.slice(from, end);
}

/** CID or parentCID as vmdk_read_cid reads it: after the first occurrence of the key and one more character, a hex number. */
export function readCid(text: string, key: 'CID' | 'parentCID'): number | undefined {
  const at = text.indexOf(key);
  if (at < 0) return undefined;
  const m = /^\s*[+-]?(?:0[xX])?([0-9a-fA-F]+)/.exec(text.slice(at + key.length + 1, at + key.length + 200));
  if (!m) return undefined;
  return Number(BigInt(`0x${m[1]}`) & 0xffffffffn);
}

/** parentFileNameHint as vmdk_parent_open reads it; undefined when absent. Throws when it is malformed (QEMU fails the open). */
export function parentFileNameHint(text: string, image: string): string | undefined {
  const key = 'parentFileNameHint';
  const at = text.indexOf(key);
  if (at < 0) return undefined;
  const from = at + key.length + 2;
  const end = text.indexOf('"', from);
  if (end < 0) throw formatError(image, 'parentFileNameHint in the descriptor has no closing quote');
  if (end - from > 4095) throw formatError(image, 'parentFileNameHint in the descriptor is longer than a path can be');
  return text.slice(from, end);
}

/** Parse the descriptor text (already cut at its first NUL). */
export function parseDescriptor(text: string, image: string): Descriptor {
  const extents: ExtentLine[] = [];
  for (let p = 0; p < text.length; ) {
    const line = scanExtentLine(text, p);
    if (line.matches >= 4 && line.access === 'RW') {
      const { type } = line;
      if (type === 'FLAT') {
        if (line.matches !== 5 || line.offset < 0) throw invalidLine(text, p, image);
      } else if (type === 'VMFS') {
        if (line.matches !== 4) throw invalidLine(text, p, image);
      } else if (line.matches !== 4) {
        throw invalidLine(text, p, image);
      }
      if (line.sectors > 0 && (EXTENT_TYPES as readonly string[]).includes(type)) {
        if (extents.length >= MAX_VMDK_EXTENTS) throw unsupportedError(image, `its descriptor names more than ${MAX_VMDK_EXTENTS} extents`, p, 'a descriptor this long is likely hostile');
        extents.push({ type: type as ExtentType, sectors: line.sectors, name: line.name, flatOffset: Math.max(0, line.offset), at: p });
      }
    }
    const nl = text.indexOf('\n', p);
    p = nl < 0 ? text.length : nl + 1;
  }
  return { createType: descriptionValue(text, 'createType'), extents };
}

function invalidLine(text: string, p: number, image: string): Error {
  const nl = text.indexOf('\n', p);
  const line = text.slice(p, nl < 0 ? text.length : nl).slice(0, 200);
  return formatError(image, `invalid extent line in the descriptor: ${JSON.stringify(line)}`);
}

interface Scanned {
  matches: number;
  access: string;
  sectors: number;
  type: string;
  name: string;
  offset: number;
}

/** sscanf(p, "%10s %lld %10s \"%511[^\n\r\"]\" %lld"): how many fields matched, and their values. */
export function scanExtentLine(text: string, start: number): Scanned {
  const out: Scanned = { matches: 0, access: '', sectors: 0, type: '', name: '', offset: -1 };
  let p = start;
  const skipSpace = () => {
    while (p < text.length && SPACE.has(text[p])) p++;
  };
  const word = (max: number): string | undefined => {
    skipSpace();
    const from = p;
    while (p < text.length && p - from < max && !SPACE.has(text[p])) p++;
    return p > from ? text.slice(from, p) : undefined;
  };
  const integer = (): number | undefined => {
    skipSpace();
    const m = /^[+-]?[0-9]+/.exec(text.slice(p, p + 40));
    if (!m) return undefined;
    p += m[0].length;
    const v = Number(m[0]);
    return Number.isSafeInteger(v) ? v : v > 0 ? Number.MAX_SAFE_INTEGER : -Number.MAX_SAFE_INTEGER;
  };
  const literal = (c: string): boolean => {
    skipSpace();
    if (text[p] !== c) return false;
    p++;
    return true;
  };
  const access = word(10);
  if (access === undefined) return out;
  out.access = access;
  out.matches = 1;
  const sectors = integer();
  if (sectors === undefined) return out;
  out.sectors = sectors;
  out.matches = 2;
  const type = word(10);
  if (type === undefined) return out;
  out.type = type;
  out.matches = 3;
  if (!literal('"')) return out;
  const from = p;
  while (p < text.length && p - from < 511 && text[p] !== '\n' && text[p] !== '\r' && text[p] !== '"') p++;
  if (p === from) return out;
  out.name = text.slice(from, p);
  out.matches = 4;
  if (!literal('"')) return out;
  const offset = integer();
  if (offset === undefined) return out;
  out.offset = offset;
  out.matches = 5;
  return out;
}

/**
 * Where an extent file name points, as QEMU resolves it against the
 * descriptor it was read from (`descriptorPath`, as the descriptor was opened).
 */
export function resolveExtentName(name: string, descriptorPath: string, image: string): string {
  const colon = name.indexOf(':');
  const afterProtocol = colon >= 0 ? name.slice(colon + 1) : name;
  if (!afterProtocol.startsWith('/')) return join(dirname(descriptorPath), name);
  const protocol = colon >= 0 ? name.slice(0, colon) : undefined;
  // QEMU takes the name for absolute and opens it as it is; with a '/' before the colon that is a plain path.
  if (protocol === undefined || /[/\\]/.test(protocol)) return name;
  if (protocol === 'file') return afterProtocol;
  throw unsupportedError(image, `names extent ${JSON.stringify(name)}, which QEMU would open with the ${JSON.stringify(protocol)} protocol; guestlens reads only local files`);
}
