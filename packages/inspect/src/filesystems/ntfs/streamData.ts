/**
 * The bytes of an attribute's value (a file's $DATA, an index allocation, a
 * named stream): resident values come from the record; non-resident ones
 * from their runlist, sparse runs reading as zeros and bytes past the
 * initialized size as zeros (Windows' valid data length); compressed ones a
 * compression unit at a time (compression.ts). Encrypted (EFS) values are
 * ciphertext without the user's key: refused, as ntfs-3g refuses them.
 */
import { isCompressed, isEncrypted } from './attribute.ts';
import { readFromRuns } from './clusterRuns.ts';
import { readCompressed } from './compression.ts';
import { NtfsUnsupportedError } from './errors.ts';
import type { NtfsAttribute } from './inode.ts';
import type { NtfsVolume } from './volume.ts';

/** Bytes [offset, offset + n) of the value, cut at its data size. */
export async function readStream(vol: NtfsVolume, attr: NtfsAttribute, offset: number, n: number, structure: string): Promise<Buffer> {
  const end = Math.min(attr.dataSize, offset + n);
  if (end <= offset) return Buffer.alloc(0);
  if (!attr.nonResident) return Buffer.from(attr.value!.subarray(offset, end));
  if (isEncrypted(attr)) throw new NtfsUnsupportedError(vol.image, 'EFS encryption', `${structure} is encrypted; its plain text needs the owner's key`);
  const len = end - offset;
  const valid = Math.min(attr.initializedSize, end);
  let out: Buffer;
  if (isCompressed(attr)) {
    out = await readCompressed(vol, attr, offset, len, structure);
  } else if (valid > offset) {
    const head = await readFromRuns(vol, attr.runs!, offset, valid - offset, structure);
    out = head.length === len ? head : Buffer.concat([head, Buffer.alloc(len - head.length)]);
  } else {
    out = Buffer.alloc(len);
  }
  if (valid < end) out.fill(0, Math.max(0, valid - offset));
  return out;
}

/** The whole value of a metadata attribute, refused beyond `max` bytes. */
export async function readWholeStream(vol: NtfsVolume, attr: NtfsAttribute, structure: string, max = vol.limits.maxMetadataBytes): Promise<Buffer> {
  if (attr.dataSize > max) throw vol.corrupt(structure, undefined, `${attr.dataSize} bytes, over the ${max}-byte bound for this structure`);
  return readStream(vol, attr, 0, attr.dataSize, structure);
}
