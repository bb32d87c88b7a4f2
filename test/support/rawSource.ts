/** A raw image file opened read-only for the length of `fn`, closed on every path. */
import { RawFileSource } from '@guestlens/qcow2-js';

export async function withRawSource<T>(path: string, fn: (source: RawFileSource) => Promise<T>): Promise<T> {
  const source = await RawFileSource.open(path);
  try {
    return await fn(source);
  } finally {
    await source.close();
  }
}
