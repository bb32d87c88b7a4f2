/**
 * RPM package headers, as rpmdb.sqlite's Packages table stores them (the
 * header without its 8-byte lead magic): a count of index entries, the data
 * length, the index (tag, type, offset, count, big-endian), then the data.
 * Only the tags inspection needs are read; every offset is checked against
 * the blob.
 */
import { GuestlensError } from '@guestlens/block';
import type { Application } from './application.ts';

const TAG = { NAME: 1000, VERSION: 1001, RELEASE: 1002, EPOCH: 1003, SUMMARY: 1004, VENDOR: 1011, URL: 1020, ARCH: 1022 } as const;
const TYPE_INT32 = 4;
const TYPE_STRING = 6;
const TYPE_STRING_ARRAY = 8;
const TYPE_I18NSTRING = 9;
const MAX_ENTRIES = 100_000;

export class RpmHeaderError extends GuestlensError {
  constructor(detail: string) {
    super('EFSCORRUPTED', `an RPM package header is damaged: ${detail}`);
  }
}

export function parseRpmHeader(blob: Uint8Array): Map<number, string | number> {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (b.length < 8) throw new RpmHeaderError(`${b.length} bytes is too short`);
  const il = b.readUInt32BE(0);
  const dl = b.readUInt32BE(4);
  if (il > MAX_ENTRIES || 8 + il * 16 + dl > b.length) throw new RpmHeaderError(`${il} entries and ${dl} data bytes do not fit ${b.length} bytes`);
  const dataStart = 8 + il * 16;
  const out = new Map<number, string | number>();
  const wanted = new Set<number>(Object.values(TAG));
  for (let i = 0; i < il; i++) {
    const at = 8 + i * 16;
    const tag = b.readUInt32BE(at);
    if (!wanted.has(tag)) continue;
    const type = b.readUInt32BE(at + 4);
    const offset = b.readInt32BE(at + 8);
    const count = b.readUInt32BE(at + 12);
    if (offset < 0 || offset >= dl) throw new RpmHeaderError(`tag ${tag} points at ${offset}, outside ${dl} data bytes`);
    const p = dataStart + offset;
    if (type === TYPE_INT32) {
      if (count < 1 || p + 4 > dataStart + dl) throw new RpmHeaderError(`tag ${tag} runs past the data`);
      out.set(tag, b.readUInt32BE(p));
    } else if (type === TYPE_STRING || type === TYPE_I18NSTRING || type === TYPE_STRING_ARRAY) {
      const end = b.indexOf(0, p);
      if (end < 0 || end > dataStart + dl) throw new RpmHeaderError(`tag ${tag}'s string runs past the data`);
      out.set(tag, b.toString('utf8', p, end));
    }
  }
  return out;
}

export function applicationOfHeader(blob: Uint8Array): Application | undefined {
  const h = parseRpmHeader(blob);
  const name = h.get(TAG.NAME);
  const version = h.get(TAG.VERSION);
  if (typeof name !== 'string' || typeof version !== 'string') return undefined;
  // gpg-pubkey "packages" are keys, not software (virt-inspector leaves them out too).
  if (name === 'gpg-pubkey') return undefined;
  const app: Application = { name, version };
  const epoch = h.get(TAG.EPOCH);
  if (typeof epoch === 'number') app.epoch = epoch;
  const release = h.get(TAG.RELEASE);
  if (typeof release === 'string') app.release = release;
  const arch = h.get(TAG.ARCH);
  if (typeof arch === 'string') app.arch = arch;
  const url = h.get(TAG.URL);
  if (typeof url === 'string') app.url = url;
  const vendor = h.get(TAG.VENDOR);
  if (typeof vendor === 'string') app.publisher = vendor;
  const summary = h.get(TAG.SUMMARY);
  if (typeof summary === 'string') app.summary = summary;
  return app;
}
