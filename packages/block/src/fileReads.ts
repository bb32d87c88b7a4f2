/**
 * Reading a byte range of a host file fully: the loop every prober and header
 * reader needs (a positioned read may return fewer bytes than asked). A range
 * past the end of the file is returned short, never padded: callers decide
 * what a short file means.
 */
import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

export function readAtSync(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}

export async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf.subarray(0, done);
}
