/**
 * A window onto part of a block source: a partition, a logical volume's
 * segment, a filesystem found inside a container. Offsets are relative to the
 * window; reads outside it are refused, so a corrupt structure inside a
 * partition can never read its neighbour.
 */
import { checkRange } from './range.ts';
import { GuestlensError } from './errors.ts';
import { readInto, type BlockSource, type Extent } from './blockSource.ts';

/** A window (partition, volume) that would reach outside the source it is cut from. */
export class WindowBoundsError extends GuestlensError {
  constructor(
    readonly source: string,
    readonly offset: number,
    readonly length: number,
    readonly parentSize: number,
  ) {
    super('ERANGE', `${source}: a view of ${length} bytes at offset ${offset} runs past the end of its container (size ${parentSize})`, {
      data: { source, offset, length, parentSize },
    });
  }
}

export class BlockWindow implements BlockSource {
  private closed = false;

  /**
   * @param parent the source the window is cut from (not owned: closing the window leaves it open)
   * @param start byte offset of the window in `parent`
   * @param size byte length of the window
   * @param name how errors name the window, e.g. "disk.qcow2 partition 2"
   */
  constructor(
    readonly parent: BlockSource,
    readonly start: number,
    readonly size: number,
    readonly name: string,
  ) {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(size) || start < 0 || size < 0 || start + size > parent.size) {
      throw new WindowBoundsError(parent.name, start, size, parent.size);
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.requireOpen();
    checkRange(this, offset, length);
    return this.parent.read(this.start + offset, length);
  }

  /** Straight into the caller's buffer when the source below can (no copy per layer). */
  async readInto(target: Buffer, targetOffset: number, offset: number, length: number): Promise<void> {
    this.requireOpen();
    checkRange(this, offset, length);
    await readInto(this.parent, target, targetOffset, this.start + offset, length);
  }

  async extent(offset: number, length: number): Promise<Extent> {
    this.requireOpen();
    checkRange(this, offset, length);
    const e = await this.parent.extent(this.start + offset, length);
    const end = Math.min(e.offset + e.length, this.start + offset + length);
    return { offset, length: end - (this.start + offset), kind: e.kind };
  }

  /** The window's bounds are fixed; what lies below may have changed. */
  async refresh(): Promise<void> {
    this.requireOpen();
    await this.parent.refresh();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private requireOpen(): void {
    if (this.closed) throw new Error(`${this.name}: block source already closed`);
  }
}
