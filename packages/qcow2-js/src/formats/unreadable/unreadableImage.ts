/**
 * A layer in a format guestlens recognises but cannot read: it opens, so
 * `image info` can describe it (format, file size, `readable: false` and
 * why), and every read fails with that reason instead of returning the
 * container's bytes as if they were the guest's.
 */
import type { BlockSource, Extent } from '@guestlens/block';
import type { ImageInfo } from '../../chain/imageInfo.ts';
import { unsupportedError } from '../../errors.ts';
import type { ImageLayer } from '../layer.ts';
import { RawFileSource } from '../../file/rawFile.ts';

export class UnreadableImage implements ImageLayer {
  readonly readable = false;
  /** Unknown: reading the size would mean parsing the format. */
  readonly size = 0;

  constructor(
    readonly file: BlockSource,
    readonly format: string,
    readonly name: string,
    readonly unreadableReason: string,
  ) {}

  private refuse(): never {
    throw unsupportedError(this.name, `is ${this.unreadableReason}`);
  }

  async read(): Promise<Buffer> {
    this.refuse();
  }

  async extent(): Promise<Extent> {
    this.refuse();
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
      format: this.format,
      'actual-size': this.file instanceof RawFileSource ? this.file.allocatedBytes : undefined,
      'dirty-flag': false,
      readable: false,
      'unreadable-reason': this.unreadableReason,
    };
  }
}
