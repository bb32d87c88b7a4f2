/**
 * The part every block-mapped image format shares (vdi, vpc, vhdx, vmdk):
 * a layer maps a guest offset to a run — bytes of some file, zeros, the
 * backing file, or a compressed grain — and this class turns runs into reads
 * and extents. A format supplies `mapRun` (one translation step, as QEMU's
 * get_sector_offset / get_cluster_offset / vhdx_block_translate) and
 * `reload` (re-read its header and tables on refresh); the reading rules
 * live here once:
 *
 *  - data that lies past the end of its file: the allocation unit the file
 *    ends in reads its missing tail as zeros (QEMU never wrote it, and its
 *    block layer pads reads past the end of a file with zeros), but a unit
 *    that starts at or past the end is not there at all: a corrupt (or
 *    truncated, or not yet written) image, and an error;
 *  - the backing file, where a run says so, with zeros past its end;
 *  - at most MAX_READS_IN_FLIGHT reads of the file started by one read().
 */
import { checkRange, readInto, DEFAULT_MAX_READ_BYTES, type BlockSource, type Extent, type ExtentKind } from '@guestlens/block';
import type { ImageInfo } from '../../chain/imageInfo.ts';
import { corruptError, limitError } from '../../errors.ts';
import type { ImageLayer } from '../layer.ts';

/** Reads of the file one read() may have started and not yet finished. */
const MAX_READS_IN_FLIGHT = 256;
/** Work bound of one extent() call, in runs of the map. */
const MAX_EXTENT_RUNS = 4096;

interface RunBase {
  /** Bytes from the offset asked for (at most the length asked for). */
  length: number;
}

/** Guest bytes stored as they are in `source` from `host` on. */
export interface DataRun extends RunBase {
  kind: 'data';
  source: BlockSource;
  host: number;
  /**
   * The allocation unit (block, grain) of the map: where the file ends inside
   * a unit, the rest of the unit reads as zeros; a unit that starts past the
   * end is an error. Infinity for flat extents, which QEMU pads with zeros.
   */
  unit: number;
  /** Offset of the run's first byte inside its unit. */
  unitOffset: number;
  /** Where the table entry that maps the run lives in the image file, for messages. */
  entryOffset?: number;
}

export interface ZeroRun extends RunBase {
  kind: 'zero';
}

/** Not in this layer: the backing file's bytes (zeros without one, or past its end). */
export interface BackingRun extends RunBase {
  kind: 'backing';
}

/**
 * Compressed grains, one after the other in the guest (the format reads them,
 * `readCompressed`): their compressed bytes start at `hosts[i]` of `source`.
 */
export interface CompressedRun extends RunBase {
  kind: 'compressed';
  source: BlockSource;
  hosts: number[];
  /** Guest offset of the first grain's first byte. */
  grainStart: number;
  grainSize: number;
  entryOffset?: number;
}

export type MapRun = DataRun | ZeroRun | BackingRun | CompressedRun;

let nextLayerId = 1;

export abstract class MappedImage implements ImageLayer {
  abstract readonly format: string;
  readonly readable = true;
  /** The layer below, when the image has one. */
  backing: ImageLayer | undefined;
  /** Cache keys of this layer start with it (the chain's caches are shared). */
  readonly keyPrefix = `m${nextLayerId++}:`;
  protected closed = false;

  constructor(
    readonly file: BlockSource,
    readonly name: string,
    protected readonly maxReadBytes = DEFAULT_MAX_READ_BYTES,
  ) {}

  abstract get size(): number;
  abstract describe(): ImageInfo;
  /** The run that starts at guest `offset`, at most `maxLength` bytes (offset + maxLength <= size). */
  protected abstract mapRun(offset: number, maxLength: number): Promise<MapRun>;
  /** Re-read the layer's own metadata (the file below is already refreshed). */
  protected abstract reload(): Promise<void>;

  /** Other files the layer reads (extent files), closed and refreshed with it. */
  protected get extraSources(): BlockSource[] {
    return [];
  }

  /** Decompress the grain of `run` into `target` (only formats with compressed runs implement it). */
  protected async readCompressed(run: CompressedRun, _target: Buffer, _targetOffset: number, guestOffset: number): Promise<void> {
    throw corruptError(this.name, `a compressed grain at guest offset ${guestOffset} in a format without compression`, run.entryOffset);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    this.checkReadLength(length);
    const out = Buffer.allocUnsafe(length);
    await this.readInto(out, 0, offset, length);
    return out;
  }

  async readInto(target: Buffer, targetOffset: number, offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    this.checkReadLength(length);
    this.requireOpen();
    const end = offset + length;
    const io: Promise<void>[] = [];
    try {
      for (let pos = offset; pos < end; ) {
        const run = await this.mapRun(pos, end - pos);
        if (!(run.length > 0)) throw new Error(`${this.name}: mapping at ${pos} made no progress`);
        const at = targetOffset + (pos - offset);
        if (run.kind === 'data') track(io, this.readData(target, at, run, pos));
        else if (run.kind === 'zero') target.fill(0, at, at + run.length);
        else if (run.kind === 'backing') track(io, this.readBacking(target, at, pos, run.length));
        else track(io, this.readCompressed(run, target, at, pos));
        pos += run.length;
        // A fragmented image can map one read to a great many runs; bound what is in flight.
        if (io.length >= MAX_READS_IN_FLIGHT) await settleAll(io.splice(0));
      }
    } finally {
      // Reads already started must finish (or fail) before the caller sees an error and maybe closes the file.
      await settleAll(io);
    }
  }

  async extent(offset: number, length: number): Promise<Extent> {
    checkRange(this, offset, length);
    this.requireOpen();
    let kind: ExtentKind | undefined;
    let pos = offset;
    const end = offset + length;
    for (let runs = 0; pos < end && runs < MAX_EXTENT_RUNS; runs++) {
      const run = await this.mapRun(pos, end - pos);
      let runKind: ExtentKind;
      let runLength = run.length;
      if (run.kind === 'data') runKind = 'data';
      else if (run.kind === 'compressed') runKind = 'compressed';
      else if (run.kind === 'zero' || !this.backing || pos >= this.backing.size) runKind = 'zero';
      else {
        const below = await this.backing.extent(pos, Math.min(runLength, this.backing.size - pos));
        runKind = below.kind;
        runLength = below.length;
      }
      if (kind === undefined) kind = runKind;
      else if (runKind !== kind) break;
      pos += runLength;
    }
    return { offset, length: pos - offset, kind: kind ?? 'data' };
  }

  async refresh(): Promise<void> {
    this.requireOpen();
    await this.file.refresh();
    for (const source of this.extraSources) await source.refresh();
    await this.reload();
    await this.backing?.refresh();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.dropCaches();
    const closing = [this.file.close(), ...this.extraSources.map((s) => s.close()), this.backing?.close()];
    await settleAll(closing.filter((p): p is Promise<void> => p !== undefined));
  }

  /** Forget cached tables (close, and refresh before reloading). */
  protected dropCaches(): void {}

  protected async readData(target: Buffer, targetOffset: number, run: DataRun, guestOffset: number): Promise<void> {
    const { source, host, length } = run;
    if (host + length > source.size) await source.refresh();
    const present = Math.max(0, Math.min(length, source.size - host));
    if (present < length && Number.isFinite(run.unit)) {
      // The first unit of the run that starts at or past the end of the file.
      const units = Math.max(0, Math.ceil((source.size - host + run.unitOffset) / run.unit));
      const missingAt = units * run.unit - run.unitOffset;
      if (missingAt < length) {
        const guest = guestOffset + Math.max(0, missingAt);
        const where = source === this.file ? 'the file' : `the file ${source.name}`;
        throw corruptError(this.name, `data for guest offset ${guest} is at offset ${host + Math.max(0, missingAt)} of ${where}, past its end (${source.size} bytes)`, run.entryOffset);
      }
    }
    if (present > 0) await readInto(source, target, targetOffset, host, present);
    if (present < length) target.fill(0, targetOffset + present, targetOffset + length);
  }

  protected async readBacking(target: Buffer, targetOffset: number, guestOffset: number, length: number): Promise<void> {
    const backing = this.backing;
    // Past the end of a shorter backing image (or with none) the guest sees zeros.
    const present = backing ? Math.max(0, Math.min(length, backing.size - guestOffset)) : 0;
    if (present > 0 && backing) await readInto(backing, target, targetOffset, guestOffset, present);
    if (present < length) target.fill(0, targetOffset + present, targetOffset + length);
  }

  protected checkReadLength(length: number): void {
    if (length > this.maxReadBytes) {
      throw limitError(this.name, `read of ${length} bytes exceeds the limit of ${this.maxReadBytes} bytes per read`, 'read in smaller pieces');
    }
  }

  protected requireOpen(): void {
    if (this.closed) throw new Error(`${this.name}: image already closed`);
  }
}

/**
 * Start tracking a read. Its failure is reported by settleAll once the whole
 * request is mapped; until then a handler must be attached, or Node would call
 * the rejection unhandled while the mapping waits for a table.
 */
export function track(io: Promise<void>[], read: Promise<void>): void {
  read.catch(() => undefined);
  io.push(read);
}

/** Wait for every promise (so none is left running against a closed file), then throw the first failure. */
export async function settleAll(promises: Promise<unknown>[]): Promise<void> {
  if (promises.length === 0) return;
  const results = await Promise.allSettled(promises);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}
