/**
 * Discovering an image's backing chain without opening anything it names
 * before the backing policy has judged it. One level at a time: read what the
 * level names with the reader's own parsers (the qcow2 header, a VMDK
 * descriptor), judge data files and extents with the one backing policy,
 * learn the backing file (from the qcow2 header, or from `qemu-img info -U -f
 * FMT` of that one file for other formats: it opens no backing file), judge
 * it, and only then go down a level.
 */
import { statSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { BackingRefusedError, isQcow2Error, missingFileError, readNamedFiles, type BackingPolicyCheck, type NamedFiles } from '@guestlens/qcow2-js';
import { parseBackingReference } from './backingReference.ts';
import { BackingChainError, ImageAccessError, UnsupportedFormatError } from './errors.ts';
import { OVERLAY_FORMATS, isOverlayFormat } from './formats.ts';
import { qemuImgInfo } from './qemuImg.ts';

/** Deeper chains exist only by accident or malice; each level costs a qemu-img run. */
export const MAX_CHAIN_DEPTH = 128;

export interface ChainEntry {
  /** 0 for the image itself, 1 for its backing file, ... */
  depth: number;
  /** Absolute path QEMU opens for this level. */
  filename: string;
  format: string;
  /** given: the caller said so; probed: detected (no format recorded); recorded: the level above names it. */
  formatFrom: 'given' | 'probed' | 'recorded';
  /** Guest-visible size in bytes. */
  virtualSize: number;
  /** This level's backing file name exactly as stored in its header. */
  backingFilename?: string;
  /** The backing format this level records for it. */
  backingFormat?: string;
  /** qcow2 external data file (absolute path). */
  dataFile?: string;
  /** The external data file holds the guest data as a raw image. */
  dataFileRaw?: boolean;
  /** VMDK descriptor: the extent files it opens (absolute paths). */
  extents?: string[];
  /** Reached through a json: reference that opens it with locking off. */
  lockingOff?: boolean;
  /** Opened through the host_device driver (a block device). */
  blockDevice?: boolean;
}

export interface ChainTop {
  /** Absolute path of the image. */
  path: string;
  /** Name used in messages. */
  image: string;
  format: string;
  formatFrom: 'given' | 'probed';
  blockDevice: boolean;
}

interface Level {
  path: string;
  format: string;
  formatFrom: ChainEntry['formatFrom'];
  referrer?: string;
  /** The name the level above stores for this one. */
  storedName?: string;
  lockingOff?: boolean;
  blockDevice?: boolean;
  /** A data file named by the json: reference that reached this level (it overrides the header's). */
  dataFile?: string;
}

export async function walkChain(top: ChainTop, policy: BackingPolicyCheck): Promise<ChainEntry[]> {
  const chain: ChainEntry[] = [];
  const seen = new Map<string, string>();
  let level: Level | undefined = { path: top.path, format: top.format, formatFrom: top.formatFrom, blockDevice: top.blockDevice };
  for (let depth = 0; level; depth++) {
    if (depth > MAX_CHAIN_DEPTH) throw new BackingChainError(top.image, `its backing chain is deeper than ${MAX_CHAIN_DEPTH} levels; guestlens stops there`);
    const { entry, next } = await walkLevel(level, depth, top, policy, seen);
    chain.push(entry);
    level = next;
  }
  return chain;
}

async function walkLevel(level: Level, depth: number, top: ChainTop, policy: BackingPolicyCheck, seen: Map<string, string>): Promise<{ entry: ChainEntry; next?: Level }> {
  const by = level.referrer ?? top.image;
  let st: Stats;
  try {
    st = statSync(level.path);
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    if (depth === 0) throw new ImageAccessError(top.image, err.code === 'ENOENT' ? 'no such file' : (err.message ?? String(err)));
    // The reader says the same of a missing backing file (one answer, whoever asks).
    const missing = missingFileError({ kind: 'backing', image: by, name: level.storedName ?? level.path, path: level.path }, err.code ?? err.message);
    throw new BackingChainError(by, missing.message.slice(by.length + 2));
  }
  const inode = `${st.dev}:${st.ino}`;
  const loopsTo = seen.get(inode);
  if (loopsTo !== undefined) throw new BackingChainError(by, `its backing chain loops: ${JSON.stringify(level.path)} is ${JSON.stringify(loopsTo)} again`);
  seen.set(inode, level.path);

  const dir = dirname(level.path);
  const named = await namedFilesOf(level.path, level.format, policy);
  const entry: ChainEntry = { depth, filename: level.path, format: level.format, formatFrom: level.formatFrom, virtualSize: 0 };
  if (level.lockingOff) entry.lockingOff = true;
  if (level.blockDevice) entry.blockDevice = true;

  // Files qemu-img info itself may open are judged before it runs.
  const dataFileName = level.dataFile ?? named.dataFile;
  if (dataFileName !== undefined) {
    const ref = parseBackingReference(dataFileName);
    if (ref.kind !== 'path') throw new BackingRefusedError(level.path, dataFileName, 'external data file', ref.kind === 'unsupported' ? ref.reason : 'it is a json: reference');
    if (depth > 0 && level.dataFile === undefined && !isAbsolute(ref.path)) {
      // QEMU resolves it against the current directory of whatever program opens the chain, not the image's.
      throw new BackingRefusedError(level.path, dataFileName, 'external data file', 'it is a relative path, which QEMU resolves against the current directory of the program that opens the chain');
    }
    entry.dataFile = resolve(dir, ref.path);
    entry.dataFileRaw = named.dataFileRaw;
    await policy.check({ kind: 'data-file', image: level.path, name: dataFileName, path: entry.dataFile });
  }
  if (named.extents?.length) {
    entry.extents = [];
    for (const [i, name] of named.extents.entries()) {
      // Resolved as QEMU resolves extent names (the descriptor parser's rule), not as plain paths.
      const extent = resolve(named.extentPaths?.[i] ?? resolve(dir, name));
      await policy.check({ kind: 'extent', image: level.path, name, path: extent });
      entry.extents.push(extent);
    }
  }
  if (named.backingUnreadByQemu) {
    // QEMU reads a differencing VHD as if it had no parent and refuses a differencing VHDX: an overlay would show other bytes.
    throw new BackingChainError(
      level.path,
      `is a differencing ${level.format === 'vpc' ? 'VHD' : 'VHDX'} disk (parent ${JSON.stringify(named.backing)}), whose parent QEMU does not read; read it without an overlay (guestlens reads the chain itself)`,
    );
  }

  let backing: string | undefined;
  let fullBacking: string | undefined;
  let backingFormat: string | undefined;
  if (level.format === 'qcow2' && named.virtualSize !== undefined) {
    // The header says it all: no qemu-img run for a qcow2 level.
    entry.virtualSize = named.virtualSize;
    backing = named.backing;
    backingFormat = named.backingFormat;
  } else if (level.format === 'raw' && st.isFile()) {
    entry.virtualSize = st.size;
  } else {
    const info = await qemuImgInfo(level.path, level.format);
    entry.virtualSize = typeof info['virtual-size'] === 'number' ? info['virtual-size'] : 0;
    backing = stringField(info, 'backing-filename');
    fullBacking = stringField(info, 'full-backing-filename');
    backingFormat = stringField(info, 'backing-filename-format');
  }
  if (backing === undefined) return { entry };
  entry.backingFilename = backing;
  if (backingFormat !== undefined) entry.backingFormat = backingFormat;

  const ref = parseBackingReference(fullBacking ?? backing);
  if (ref.kind === 'unsupported') throw new BackingRefusedError(level.path, backing, 'backing file', ref.reason);
  // QEMU resolves a plain relative name against the image's directory, a json: filename against the current one.
  const path = ref.kind === 'json' ? resolve(ref.path) : resolve(dir, ref.path);
  await policy.check({ kind: 'backing', image: level.path, name: backing, path, format: backingFormat });

  let format = ref.kind === 'json' ? ref.format : undefined;
  format ??= backingFormat;
  let formatFrom: ChainEntry['formatFrom'] = 'recorded';
  if (format === undefined) {
    // No format recorded: QEMU will probe this file when it opens the chain, so ask it what it will find.
    const probed = await qemuImgInfo(path, undefined).catch((err: Error) => {
      throw new BackingChainError(level.path, `its backing file ${JSON.stringify(path)} has no recorded format and cannot be read: ${err.message}`);
    });
    format = stringField(probed, 'format') ?? 'raw';
    formatFrom = 'probed';
  }
  if (!isOverlayFormat(format)) {
    throw new UnsupportedFormatError(`${level.path} (backing file ${JSON.stringify(path)})`, format, OVERLAY_FORMATS);
  }
  return {
    entry,
    next: {
      path,
      format,
      formatFrom,
      referrer: level.path,
      storedName: backing,
      lockingOff: ref.kind === 'json' ? ref.lockingOff : undefined,
      blockDevice: ref.kind === 'json' ? ref.blockDevice : undefined,
      dataFile: ref.kind === 'json' ? ref.dataFile : undefined,
    },
  };
}

/** What a level names, by the reader's parsers; a header they refuse is a broken chain, named by the level. */
async function namedFilesOf(path: string, format: string, policy: BackingPolicyCheck): Promise<NamedFiles> {
  try {
    // The policy also judges sparse extents before they are looked into (for nested descriptors).
    return await readNamedFiles(path, format, (ref) => policy.check(ref));
  } catch (err) {
    if (err instanceof BackingRefusedError) throw err;
    if (isQcow2Error(err) && err.kind === 'chain') throw new BackingChainError(path, err.detail);
    if (isQcow2Error(err)) throw new BackingChainError(path, `${err.detail}${err.offset === undefined ? '' : ` (at offset ${err.offset})`}; its header cannot be read`);
    throw err;
  }
}

function stringField(info: Record<string, unknown>, key: string): string | undefined {
  const v = info[key];
  return typeof v === 'string' ? v : undefined;
}
