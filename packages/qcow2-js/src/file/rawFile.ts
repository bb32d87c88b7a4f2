import { open, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import { checkRange, GuestlensError, type BlockSource, type Extent } from '@guestlens/block';
import { fileRunAt } from './holes.ts';

/**
 * A host file (or block device) as a block source: QEMU's "file" protocol,
 * what every image format reads its bytes through. Opened O_RDONLY: guest
 * images are never written. Size is re-read on refresh because a live raw
 * image can grow.
 */
export class RawFileSource implements BlockSource {
  private constructor(
    private handle: FileHandle | undefined,
    readonly name: string,
    public size: number,
    /** `device:inode` of the open file: tells two paths to one file apart from two files. */
    readonly identity: string,
    /** Bytes the file occupies on disk (st_blocks * 512), as `qemu-img info` shows "disk size". */
    readonly allocatedBytes: number,
  ) {}

  static async open(path: string, name = path): Promise<RawFileSource> {
    const handle = await open(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
    try {
      const st = await handle.stat();
      let size = st.size;
      if (st.isBlockDevice()) size = await blockDeviceSize(handle);
      else if (!st.isFile()) throw new GuestlensError('EINVAL', `${name}: not a regular file or block device`, { data: { path } });
      return new RawFileSource(handle, name, size, `${st.dev}:${st.ino}`, st.blocks * 512);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(buf, 0, offset, length);
    return buf;
  }

  async readInto(target: Buffer, targetOffset: number, offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    const handle = this.requireOpen();
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(target, targetOffset + done, length - done, offset + done);
      if (bytesRead === 0) {
        // The file shrank under us (live image truncated): what is gone reads as zeros, like a hole.
        target.fill(0, targetOffset + done, targetOffset + length);
        break;
      }
      done += bytesRead;
    }
  }

  /** Holes of the file read as zeros (SEEK_DATA/SEEK_HOLE, as QEMU's file driver maps them). */
  async extent(offset: number, length: number): Promise<Extent> {
    checkRange(this, offset, length);
    const run = fileRunAt(this.requireOpen().fd, offset, length, this.size);
    return { offset, length: run.length, kind: run.data ? 'data' : 'zero' };
  }

  async refresh(): Promise<void> {
    const st = await this.requireOpen().stat();
    if (st.isFile()) this.size = st.size;
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    await h?.close();
  }

  private requireOpen(): FileHandle {
    if (!this.handle) throw new Error(`${this.name}: block source already closed`);
    return this.handle;
  }
}

async function blockDeviceSize(handle: FileHandle): Promise<number> {
  // fstat reports 0 for block devices; reading to the end via a positioned read would be slow, so ask sysfs-free: seek is not exposed by FileHandle, use /proc.
  const { readlink, readFile } = await import('node:fs/promises');
  const target = await readlink(`/proc/self/fd/${handle.fd}`);
  const dev = target.split('/').pop() ?? '';
  const sectors = await readFile(`/sys/class/block/${dev}/size`, 'utf8');
  return Number(sectors.trim()) * 512;
}
