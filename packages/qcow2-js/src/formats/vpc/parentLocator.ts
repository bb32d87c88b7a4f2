/**
 * Where a differencing VHD's parent is: the parent locator entries of its
 * dynamic header, by platform code. On this host only some are usable:
 *
 *   W2ru  a Windows path relative to the child (UTF-16LE), ".\\base.vhd"
 *   MacX  a file URL (UTF-8), "file://localhost/Users/me/base.vhd"
 *   W2ku  an absolute Windows path (UTF-16LE): usable only when it is a
 *         POSIX path (a drive letter names nothing here)
 *   Wi2r / Wi2k  the deprecated single-byte forms of W2ru / W2ku
 *
 * The first usable one wins, in that order. The name as stored is kept for
 * messages and `image info`; the resolved path is what the backing policy
 * judges and the chain opens.
 */
import type { BlockSource } from '@guestlens/block';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { corruptError } from '../../errors.ts';
import type { ParentLocator } from './dynamicHeader.ts';

/** Locator data larger than this is not a path. */
const MAX_LOCATOR_BYTES = 64 * 1024;
const PREFERENCE = ['W2ru', 'Wi2r', 'MacX', 'W2ku', 'Wi2k'];

export interface ParentName {
  /** As stored in the locator. */
  stored: string;
  /** The path to open (absolute, or relative to the working directory). */
  path?: string;
  platform: string;
}

/** Every locator's name, decoded; in order of preference. */
export async function readParentNames(file: BlockSource, locators: ParentLocator[], childPath: string, image: string): Promise<ParentName[]> {
  const names: ParentName[] = [];
  for (const loc of [...locators].sort((a, b) => rank(a.platform) - rank(b.platform))) {
    if (rank(loc.platform) === PREFERENCE.length) continue;
    if (loc.dataLength === 0) continue;
    if (loc.dataLength > MAX_LOCATOR_BYTES || loc.dataOffset + loc.dataLength > file.size) {
      throw corruptError(image, `parent locator ${loc.platform} (${loc.dataLength} bytes at offset ${loc.dataOffset}) does not lie in the file (${file.size} bytes)`, loc.dataOffset);
    }
    const raw = await file.read(loc.dataOffset, loc.dataLength);
    const stored = decode(loc.platform, raw);
    if (stored === '') continue;
    names.push({ stored, platform: loc.platform, path: resolveName(loc.platform, stored, childPath) });
  }
  return names;
}

function rank(platform: string): number {
  const i = PREFERENCE.indexOf(platform);
  return i < 0 ? PREFERENCE.length : i;
}

function decode(platform: string, raw: Buffer): string {
  const text = platform === 'W2ru' || platform === 'W2ku' ? raw.subarray(0, raw.length & ~1).toString('utf16le') : raw.toString(platform === 'MacX' ? 'utf8' : 'latin1');
  const nul = text.indexOf('\0');
  return nul < 0 ? text : text.slice(0, nul);
}

function resolveName(platform: string, stored: string, childPath: string): string | undefined {
  if (platform === 'MacX') {
    try {
      return fileURLToPath(stored.replace(/^file:\/\/localhost\//, 'file:///'));
    } catch {
      return undefined;
    }
  }
  const posix = stored.replace(/\\/g, '/');
  if (platform === 'W2ru' || platform === 'Wi2r') return isAbsolute(posix) ? undefined : join(dirname(childPath), posix);
  // An absolute Windows path names a file here only if it is a POSIX path already.
  return stored.startsWith('/') ? stored : undefined;
}
