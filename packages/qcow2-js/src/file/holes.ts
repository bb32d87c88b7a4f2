/**
 * Where a host file has data and where it has holes: lseek(2) with
 * SEEK_DATA / SEEK_HOLE, as QEMU's file driver asks (its
 * `qemu-img map` shows a raw file's holes as zeros). Node has no binding for
 * them, so the call goes through koffi, loaded on the first question only
 * (df never asks; image cat and copy-out skip holes with it). Where the call
 * is unavailable, everything is data: the safe answer.
 */
import koffi from 'koffi';

const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = 6;

type Lseek = (fd: number, offset: number, whence: number) => number;

let lseek: Lseek | null | undefined;

function load(): Lseek | null {
  if (lseek !== undefined) return lseek;
  try {
    if (process.platform !== 'linux') throw new Error('not Linux');
    const lib = koffi.load('libc.so.6');
    lseek = lib.func('lseek', 'int64', ['int', 'int64', 'int']) as Lseek;
  } catch {
    lseek = null;
  }
  return lseek;
}

export interface FileRun {
  /** False: a hole, reads as zeros. */
  data: boolean;
  /** Bytes from the offset asked for, at most the length asked for. */
  length: number;
}

/** The run of one kind at `offset` (at most `length` bytes) of the open file `fd` of `size` bytes. */
export function fileRunAt(fd: number, offset: number, length: number, size: number): FileRun {
  const seek = load();
  if (!seek || offset >= size) return { data: true, length };
  const nextData = Number(seek(fd, offset, SEEK_DATA));
  if (nextData < 0) {
    // ENXIO: no data from offset on: the rest is a hole. Any other error: say data.
    return koffi.errno() === ENXIO ? { data: false, length } : { data: true, length };
  }
  if (nextData > offset) return { data: false, length: Math.min(length, nextData - offset) };
  const nextHole = Number(seek(fd, offset, SEEK_HOLE));
  if (nextHole < 0) return { data: true, length };
  return { data: true, length: Math.min(length, Math.max(1, nextHole - offset)) };
}
