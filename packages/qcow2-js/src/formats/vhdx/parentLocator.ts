/**
 * A differencing VHDX's parent locator (MS-VHDX 2.6.2.6): a locator type
 * GUID, then key/value pairs of UTF-16LE strings. The keys guestlens uses:
 *
 *   parent_linkage        the parent's DataWriteGuid when the child was made
 *   parent_linkage2       an alternative linkage (after a parent was moved)
 *   relative_path         a Windows path relative to the child: "..\\base.vhdx"
 *   absolute_win32_path   usable here only when it is a POSIX path
 *   volume_path           a volume GUID path: never usable here
 */
import { dirname, join } from 'node:path';
import { formatError, unsupportedError } from '../../errors.ts';
import { guidString } from '../common/guid.ts';
import { VHDX_PARENT_TYPE_GUID } from './layout.ts';

const MAX_ENTRIES = 256;

export interface VhdxParentLocator {
  entries: Map<string, string>;
  linkage?: string;
  linkage2?: string;
}

export function parseParentLocator(bytes: Buffer, at: number, image: string): VhdxParentLocator {
  if (bytes.length < 20) throw formatError(image, 'parent locator is too short', at);
  if (!bytes.subarray(0, 16).equals(VHDX_PARENT_TYPE_GUID)) {
    throw unsupportedError(image, `parent locator type ${guidString(bytes)} is not a VHDX parent`, at);
  }
  const count = bytes.readUInt16LE(18);
  if (count > MAX_ENTRIES || 20 + count * 12 > bytes.length) throw formatError(image, `parent locator has ${count} entries, more than fit`, at + 18);
  const entries = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const p = 20 + i * 12;
    const text = (offset: number, length: number): string => {
      if (offset + length > bytes.length || length % 2) throw formatError(image, `parent locator entry ${i} points outside the locator`, at + p);
      return bytes.toString('utf16le', offset, offset + length);
    };
    const key = text(bytes.readUInt32LE(p), bytes.readUInt16LE(p + 8));
    const value = text(bytes.readUInt32LE(p + 4), bytes.readUInt16LE(p + 10));
    if (entries.has(key)) throw formatError(image, `parent locator names ${JSON.stringify(key)} twice`, at + p);
    entries.set(key, value);
  }
  return { entries, linkage: normalizeGuid(entries.get('parent_linkage')), linkage2: normalizeGuid(entries.get('parent_linkage2')) };
}

function normalizeGuid(text: string | undefined): string | undefined {
  return text?.replace(/[{}]/g, '').toLowerCase();
}

/** The name to follow, as stored, and the path it resolves to here (undefined when no entry is usable). */
export function parentPath(locator: VhdxParentLocator, childPath: string): { stored: string; path?: string } {
  const relative = locator.entries.get('relative_path');
  if (relative) {
    const posix = relative.replace(/\\/g, '/');
    if (!posix.startsWith('/') && !/^[A-Za-z]:/.test(posix)) return { stored: relative, path: join(dirname(childPath), posix) };
  }
  const absolute = locator.entries.get('absolute_win32_path');
  if (absolute?.startsWith('/')) return { stored: absolute, path: absolute };
  return { stored: relative ?? absolute ?? locator.entries.get('volume_path') ?? '' };
}
