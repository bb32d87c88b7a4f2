/**
 * Reusable scratch buffers for compressed bytes. Reading a compressed disk
 * allocates one such buffer per few megabytes of guest data; fresh ones would
 * be garbage that V8 collects only after tens of MiB have piled up.
 *
 * They live in SharedArrayBuffers, so the zstd workers read them in place.
 */
const MIN_BYTES = 64 * 1024;
/** Free buffers kept per size class. */
const KEEP = 4;

const free = new Map<number, Buffer[]>();

/** A buffer of at least `bytes` (its contents are arbitrary); give it back with `releaseBuffer`. */
export function takeBuffer(bytes: number): Buffer {
  const size = sizeClass(bytes);
  return free.get(size)?.pop() ?? sharedBuffer(size);
}

export function releaseBuffer(buffer: Buffer): void {
  const size = buffer.length;
  if (size !== sizeClass(size)) return;
  const list = free.get(size) ?? [];
  if (list.length < KEEP) list.push(buffer);
  free.set(size, list);
}

function sizeClass(bytes: number): number {
  return Math.max(MIN_BYTES, 2 ** Math.ceil(Math.log2(Math.max(1, bytes))));
}

/** A Buffer over memory worker threads can see (zero-filled). */
export function sharedBuffer(bytes: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(bytes));
}

export function isShared(buffer: Buffer): boolean {
  return buffer.buffer instanceof SharedArrayBuffer;
}
