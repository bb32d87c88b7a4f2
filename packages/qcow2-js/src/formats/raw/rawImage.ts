/**
 * QEMU's raw format driver over a file: the guest disk is the file's bytes,
 * optionally a window (`offset`, `size`) of it. Bytes of the window beyond the
 * end of the file read as zeros, as QEMU's block layer fills them.
 */
import { checkRange, readInto, DEFAULT_MAX_READ_BYTES, type BlockSource, type Extent } from '@guestlens/block';
import type { ImageInfo } from '../../chain/imageInfo.ts';
import { limitError } from '../../errors.ts';
import { RawFileSource } from '../../file/rawFile.ts';
import type { ImageFormatDriver, ImageLayer } from '../layer.ts';

export class RawImage implements ImageLayer {
  readonly format = 'raw';
  readonly readable = true;
  readonly name: string;

  constructor(
    readonly file: BlockSource,
    private readonly window: { offset?: number; size?: number } = {},
    name?: string,
    private readonly maxReadBytes = DEFAULT_MAX_READ_BYTES,
  ) {
    this.name = name ?? file.name;
  }

  get size(): number {
    const offset = this.window.offset ?? 0;
    return this.window.size ?? Math.max(0, this.file.size - offset);
  }

  get offset(): number {
    return this.window.offset ?? 0;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    if (length > this.maxReadBytes) {
      throw limitError(this.name, `read of ${length} bytes exceeds the limit of ${this.maxReadBytes} bytes per read`, 'read in smaller pieces');
    }
    const out = Buffer.allocUnsafe(length);
    await this.readInto(out, 0, offset, length);
    return out;
  }

  async readInto(target: Buffer, targetOffset: number, offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    const at = this.offset + offset;
    const present = Math.max(0, Math.min(length, this.file.size - at));
    if (present > 0) await readInto(this.file, target, targetOffset, at, present);
    if (present < length) target.fill(0, targetOffset + present, targetOffset + length);
  }

  async extent(offset: number, length: number): Promise<Extent> {
    checkRange(this, offset, length);
    const at = this.offset + offset;
    if (at >= this.file.size) return { offset, length, kind: 'zero' };
    const e = await this.file.extent(at, Math.min(length, this.file.size - at));
    return { offset, length: e.length, kind: e.kind };
  }

  async refresh(): Promise<void> {
    await this.file.refresh();
  }

  async close(): Promise<void> {
    await this.file.close();
  }

  describe(): ImageInfo {
    return {
      filename: this.name,
      format: 'raw',
      'virtual-size': this.size,
      'actual-size': this.file instanceof RawFileSource ? this.file.allocatedBytes : undefined,
      'dirty-flag': false,
    };
  }
}

/** Raw has no magic: it is what a file is when no other format's probe matches (or when the user says so). */
export const rawFormat: ImageFormatDriver = {
  format: 'raw',
  probe: () => true,
  open: async (file, ctx) => new RawImage(file, { offset: ctx.spec.offset, size: ctx.spec.size }, ctx.name, ctx.maxReadBytes),
};
