/**
 * Discovering an image's backing chain without opening anything it names
 * before the backing policy has judged it. One level at a time: read what the
 * level names from its header ourselves, check data files and extents, then
 * `qemu-img info -U -f FMT` that one file (which opens no backing file), check
 * its backing file, and only then go down a level.
 */
import { statSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { IMAGE_FORMATS, isImageFormat } from '@guestlens/qcow2-js';
import { parseBackingReference } from './backingReference.ts';
import { BackingChainError, BackingRefusedError, ImageAccessError, UnsupportedFormatError } from './errors.ts';
import { readNamedFiles } from './namedFiles.ts';
import type { PolicyCheck } from './policy.ts';
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
  lockingOff?: boolean;
  blockDevice?: boolean;
  /** A data file named by the json: reference that reached this level (it overrides the header's). */
  dataFile?: string;
}

export async function walkChain(top: ChainTop, policy: PolicyCheck): Promise<ChainEntry[]> {
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

async function walkLevel(level: Level, depth: number, top: ChainTop, policy: PolicyCheck, seen: Map<string, string>): Promise<{ entry: ChainEntry; next?: Level }> {
  const by = level.referrer ?? top.image;
  let st: Stats;
  try {
    st = statSync(level.path);
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    if (depth === 0) throw new ImageAccessError(top.image, err.code === 'ENOENT' ? 'no such file' : (err.message ?? String(err)));
    throw new BackingChainError(by, `its backing file ${JSON.stringify(level.path)} cannot be opened (${err.code ?? err.message}); the chain is broken`);
  }
  const inode = `${st.dev}:${st.ino}`;
  const loopsTo = seen.get(inode);
  if (loopsTo !== undefined) throw new BackingChainError(by, `its backing chain loops: ${JSON.stringify(level.path)} is ${JSON.stringify(loopsTo)} again`);
  seen.set(inode, level.path);

  const dir = dirname(level.path);
  const named = readNamedFiles(level.path, level.format);
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
    await policy.check(level.path, 'external data file', entry.dataFile);
  }
  if (named.extents?.length) {
    entry.extents = [];
    for (const name of named.extents) {
      const extent = resolve(dir, name);
      await policy.check(level.path, 'VMDK extent file', extent);
      entry.extents.push(extent);
    }
  }

  let backing: string | undefined;
  let fullBacking: string | undefined;
  let backingFormat: string | undefined;
  if (level.format === 'qcow2' && named.backing === undefined && named.virtualSize !== undefined) {
    entry.virtualSize = named.virtualSize;
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
  await policy.check(level.path, 'backing file', path);

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
  if (!isImageFormat(format)) {
    throw new UnsupportedFormatError(`${level.path} (backing file ${JSON.stringify(path)})`, format, IMAGE_FORMATS);
  }
  return {
    entry,
    next: {
      path,
      format,
      formatFrom,
      referrer: level.path,
      lockingOff: ref.kind === 'json' ? ref.lockingOff : undefined,
      blockDevice: ref.kind === 'json' ? ref.blockDevice : undefined,
      dataFile: ref.kind === 'json' ? ref.dataFile : undefined,
    },
  };
}

function stringField(info: Record<string, unknown>, key: string): string | undefined {
  const v = info[key];
  return typeof v === 'string' ? v : undefined;
}
