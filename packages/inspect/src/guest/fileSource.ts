/**
 * A guest file as a block source: what readers of formats that live inside
 * files (registry hives, systemd journal files) take, so they read a few
 * pages of a big file instead of all of it. The filesystem owns caching and
 * refresh; refreshing this source re-reads the file's size.
 */
import { checkRange, type BlockSource, type Extent } from '@guestlens/block';
import type { Filesystem } from '../filesystems/filesystem.ts';
import type { FileTree } from './guestFilesystem.ts';

export class GuestFileSource implements BlockSource {
  private constructor(
    private readonly fs: Filesystem,
    private readonly ino: number,
    public size: number,
    readonly name: string,
  ) {}

  /** The regular file at `path` of `tree` (a final symlink followed). */
  static async open(tree: FileTree, path: string, name = path): Promise<GuestFileSource> {
    const r = await tree.resolve(path);
    if (r.stat.type !== 'file') {
      const { GuestPathError } = await import('../errors.ts');
      throw new GuestPathError(r.stat.type === 'directory' ? 'EISDIR' : 'EINVAL', path, r.device, `not a regular file but a ${r.stat.type}`);
    }
    return new GuestFileSource(r.fs, r.ino, r.stat.size, `${r.device}:${name}`);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const data = await this.fs.read(this.ino, offset, length);
    // A file that shrank under a live guest: what is gone reads as zeros, never as a short read.
    if (data.length === length) return data;
    const out = Buffer.alloc(length);
    data.copy(out);
    return out;
  }

  async extent(offset: number, length: number): Promise<Extent> {
    checkRange(this, offset, length);
    return { offset, length, kind: 'data' };
  }

  async refresh(): Promise<void> {
    this.size = (await this.fs.getattr(this.ino)).size;
  }

  async close(): Promise<void> {}
}
