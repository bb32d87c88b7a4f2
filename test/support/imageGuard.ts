/**
 * "The guest image is never modified": snapshot an image's content hash and
 * mtime, and assert both are unchanged after the code under test ran.
 */
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import assert from 'node:assert/strict';

export interface ImageSnapshot {
  path: string;
  sha256: string;
  mtimeNs: bigint;
  size: number;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export async function snapshotImage(path: string): Promise<ImageSnapshot> {
  const st = statSync(path, { bigint: true });
  return { path, sha256: await sha256File(path), mtimeNs: st.mtimeNs, size: Number(st.size) };
}

export async function assertImageUnchanged(before: ImageSnapshot): Promise<void> {
  const after = await snapshotImage(before.path);
  assert.equal(after.mtimeNs, before.mtimeNs, `${before.path}: mtime changed`);
  assert.equal(after.size, before.size, `${before.path}: size changed`);
  assert.equal(after.sha256, before.sha256, `${before.path}: content changed`);
}

/** Snapshot several images, run `fn`, then assert none changed. */
export async function guardImages<T>(paths: string[], fn: () => Promise<T>): Promise<T> {
  const snaps = await Promise.all(paths.map(snapshotImage));
  const result = await fn();
  for (const s of snaps) await assertImageUnchanged(s);
  return result;
}
