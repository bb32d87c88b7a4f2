/**
 * Files at path level: `FileTree` is what the inode-level drivers
 * (Filesystem) offer, reached by guest paths resolved in pathResolver.ts
 * across a mount table; `GuestFilesystem` is one filesystem of a guest seen
 * as a tree of its own (its root at "/"); guest/guestTree.ts mounts several.
 */
import { constants as bufferConstants } from 'node:buffer';
import { Readable } from 'node:stream';
import type { DirEntry, FileStat, Filesystem, StatFs } from '../filesystems/filesystem.ts';
import { FileTooLargeError, GuestPathError } from '../errors.ts';
import { describeType, resolveInGuest, type MountTable, type ResolvedPath } from './pathResolver.ts';

/** Bytes per driver read when reading a whole file. */
const READ_CHUNK = 1024 * 1024;
const STREAM_CHUNK = 256 * 1024;

export interface ReadFileOptions {
  /** Refuse files larger than this (default: the largest Buffer Node can make). */
  maxBytes?: number;
}

export interface GuestReadStreamOptions {
  /** First byte to read (default 0). */
  start?: number;
  /** Last byte to read, inclusive, as in fs.createReadStream (default: to the end of the file). */
  end?: number;
  /** Bytes per chunk (default 256 KiB: each chunk costs a walk of the file's block map); memory stays within a few chunks whatever the file size. */
  highWaterMark?: number;
}

/** Path-level access to a tree of mounted filesystems. */
export class FileTree {
  constructor(protected readonly mounts: MountTable) {}

  /** Resolve a guest path; a final symlink is followed unless `followFinal` is false. */
  resolve(path: string, followFinal = true): Promise<ResolvedPath> {
    return resolveInGuest(this.mounts, path, { followFinal });
  }

  /** Like stat(2): a final symlink is followed. */
  async stat(path: string): Promise<FileStat> {
    return (await this.resolve(path)).stat;
  }

  /** Like lstat(2): a final symlink is described, not followed. */
  async lstat(path: string): Promise<FileStat> {
    return (await this.resolve(path, false)).stat;
  }

  /** The path with every symbolic link resolved, relative to this filesystem's root. */
  async realpath(path: string): Promise<string> {
    return (await this.resolve(path)).canonicalPath;
  }

  /** Entries of a directory (without "." and ".."), in on-disk order. */
  async readdir(path: string): Promise<DirEntry[]> {
    const r = await this.resolve(path);
    if (r.stat.type !== 'directory') throw new GuestPathError('ENOTDIR', path, r.device, `a ${describeType(r.stat.type)}`);
    return r.fs.readdir(r.ino);
  }

  async readlink(path: string): Promise<string> {
    const r = await this.resolve(path, false);
    if (r.stat.type !== 'symlink') throw new GuestPathError('EINVAL', path, r.device, `not a symbolic link but a ${describeType(r.stat.type)}`);
    return r.fs.readlink(r.ino);
  }

  /** The whole content of a regular file. */
  async readFile(path: string, options: ReadFileOptions = {}): Promise<Buffer> {
    const limit = Math.min(options.maxBytes ?? bufferConstants.MAX_LENGTH, bufferConstants.MAX_LENGTH);
    const r = await this.resolveRegular(path);
    if (r.stat.size > limit) throw new FileTooLargeError(r.device, path, r.stat.size, limit);
    const chunks: Buffer[] = [];
    let offset = 0;
    for (;;) {
      // A live file may have grown since stat: read on to the real end, within the limit.
      const want = Math.min(READ_CHUNK, limit - offset + 1);
      if (want <= 0) break;
      const chunk = await r.fs.read(r.ino, offset, want);
      if (offset + chunk.length > limit) throw new FileTooLargeError(r.device, path, offset + chunk.length, limit);
      if (chunk.length) chunks.push(chunk);
      offset += chunk.length;
      if (chunk.length < want) break;
    }
    return Buffer.concat(chunks, offset);
  }

  /** Up to `length` bytes at `offset` of a regular file (fewer at its end). */
  async readRange(path: string, offset: number, length: number): Promise<Buffer> {
    const r = await this.resolveRegular(path);
    return r.fs.read(r.ino, offset, length);
  }

  /**
   * A Readable over a regular file's bytes [start, end], read in chunks of
   * `highWaterMark` bytes. Errors (no such file, a directory...) arrive as
   * the stream's 'error' event, as with fs.createReadStream.
   */
  createReadStream(path: string, options: GuestReadStreamOptions = {}): Readable {
    const start = options.start ?? 0;
    const end = options.end ?? Infinity;
    const chunkSize = options.highWaterMark ?? STREAM_CHUNK;
    const device = this.mounts.root.device;
    if (!Number.isSafeInteger(start) || start < 0) throw new GuestPathError('EINVAL', path, device, `start ${start} is not a non-negative integer`);
    if (end !== Infinity && (!Number.isSafeInteger(end) || end < start - 1)) throw new GuestPathError('EINVAL', path, device, `end ${end} is before start ${start}`);
    if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) throw new GuestPathError('EINVAL', path, device, `highWaterMark ${chunkSize} is not a positive integer`);

    let ino = 0;
    let fs: Filesystem | undefined;
    let position = start;
    const self = this;
    return new Readable({
      highWaterMark: chunkSize,
      construct(callback) {
        self.resolveRegular(path).then(
          (r) => {
            ino = r.ino;
            fs = r.fs;
            callback();
          },
          (err: Error) => callback(err),
        );
      },
      read() {
        const want = Math.min(chunkSize, end + 1 - position);
        if (want <= 0) {
          this.push(null);
          return;
        }
        (fs as Filesystem).read(ino, position, want).then(
          (chunk) => {
            position += chunk.length;
            if (chunk.length) this.push(chunk);
            if (chunk.length < want) this.push(null);
          },
          (err: Error) => this.destroy(err),
        );
      },
    });
  }

  /** Names of a path's extended attributes (none where the filesystem has no such concept). */
  async listxattr(path: string, followFinal = false): Promise<string[]> {
    const r = await this.resolve(path, followFinal);
    return r.fs.listxattr ? r.fs.listxattr(r.ino) : [];
  }

  async getxattr(path: string, name: string, followFinal = false): Promise<Buffer> {
    const r = await this.resolve(path, followFinal);
    if (!r.fs.getxattr) throw new GuestPathError('EINVAL', path, r.device, `${r.fs.type} has no extended attributes`);
    return r.fs.getxattr(r.ino, name);
  }

  /** A regular file resolved (a final symlink followed): directories and special files are refused. */
  protected async resolveRegular(path: string): Promise<ResolvedPath> {
    const r = await this.resolve(path);
    if (r.stat.type === 'directory') throw new GuestPathError('EISDIR', path, r.device);
    if (r.stat.type !== 'file') throw new GuestPathError('EINVAL', path, r.device, `not a regular file but a ${describeType(r.stat.type)}`);
    return r;
  }
}

/** One filesystem of a guest, as a tree of its own. */
export class GuestFilesystem extends FileTree {
  constructor(
    /** The inode-level driver. */
    readonly fs: Filesystem,
    /** The guest device it lives on (/dev/sda1): named in every error. */
    readonly device: string,
  ) {
    super({ root: { fs, device }, mountedAt: () => undefined });
  }

  get type(): string {
    return this.fs.type;
  }

  get label(): string | undefined {
    return this.fs.label;
  }

  get uuid(): string | undefined {
    return this.fs.uuid;
  }

  statfs(): Promise<StatFs> {
    return this.fs.statfs();
  }

  refresh(): Promise<void> {
    return this.fs.refresh();
  }
}
