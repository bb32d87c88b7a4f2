/**
 * The one interface every layer stacks on: something with a size that reads
 * bytes at an offset. Raw files, image formats (qcow2, ...), partitions,
 * logical volumes and replayed-journal views all implement it, and each takes
 * the one below it. A filesystem driver only ever sees a block source.
 *
 * Offsets and sizes are plain numbers: every image we accept is smaller than
 * 2^53 bytes (8 PiB). Formats store 64-bit fields; parse those as bigint and
 * convert with `toSafeNumber` at the boundary, so an absurd value becomes an
 * error instead of silently losing precision.
 *
 * Refresh contract: `refresh()` of a layer re-reads that layer's metadata and
 * refreshes the layers below it first. A guest refreshes each image once from
 * the top and then only the layers above (partition tables, filesystems),
 * which re-read their own metadata without refreshing their source again.
 */

/** What a range of a block source holds, so scans can skip holes. */
export type ExtentKind = 'data' | 'zero' | 'compressed';

export interface Extent {
  offset: number;
  length: number;
  kind: ExtentKind;
}

export interface BlockSource {
  /** Guest-visible size in bytes. */
  readonly size: number;
  /** How error messages name this source: the image path, plus the layer ("disk.qcow2 partition 2"). */
  readonly name: string;
  /**
   * Exactly `length` bytes at `offset`. Reading past `size` is an error
   * (BlockRangeError), never a short read.
   */
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Optional: like `read`, but into `target` at `targetOffset`, so a layer
   * above can fill one buffer without copying. Use `readInto()` below to
   * call it on any source.
   */
  readInto?(target: Buffer, targetOffset: number, offset: number, length: number): Promise<void>;
  /**
   * The extent that starts at `offset`: the longest run (at most `length`
   * bytes) that has one kind. Sources without a map say 'data'.
   */
  extent(offset: number, length: number): Promise<Extent>;
  /** Drop every cached piece of metadata, this layer's and below (live images change under us). */
  refresh(): Promise<void>;
  /** Release file descriptors. Further reads fail. */
  close(): Promise<void>;
}

/** Read `length` bytes at `offset` of `source` into `target`, without a copy when the source can. */
export async function readInto(source: BlockSource, target: Buffer, targetOffset: number, offset: number, length: number): Promise<void> {
  if (length === 0) return;
  if (source.readInto) {
    await source.readInto(target, targetOffset, offset, length);
    return;
  }
  const data = await source.read(offset, length);
  data.copy(target, targetOffset);
}

/** Every extent of [offset, offset + length), in order: the whole map of a range (bounded by the range's own extents). */
export async function* extents(source: BlockSource, offset = 0, length = source.size - offset): AsyncGenerator<Extent> {
  const end = offset + length;
  for (let pos = offset; pos < end; ) {
    const e = await source.extent(pos, end - pos);
    // A source must make progress; one that does not is a bug, not a reason to spin.
    if (e.length <= 0) throw new Error(`${source.name}: extent() at ${pos} returned an empty extent`);
    yield e;
    pos += e.length;
  }
}
