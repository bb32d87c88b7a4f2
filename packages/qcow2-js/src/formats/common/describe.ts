/** The fields of `image info` every layer fills the same way. */
import { dirname, isAbsolute, join } from 'node:path';
import type { BlockSource } from '@guestlens/block';
import type { ImageInfo } from '../../chain/imageInfo.ts';
import { RawFileSource } from '../../file/rawFile.ts';

/** Bytes the files occupy on disk (st_blocks), summed as qemu-img sums a VMDK's extents; undefined when one is not a host file. */
export function allocatedBytes(files: BlockSource[]): number | undefined {
  let total = 0;
  for (const f of files) {
    if (!(f instanceof RawFileSource)) return undefined;
    total += f.allocatedBytes;
  }
  return total;
}

export function baseInfo(name: string, format: string, virtualSize: number, files: BlockSource[]): ImageInfo {
  return { filename: name, format, 'virtual-size': virtualSize, 'actual-size': allocatedBytes(files), 'dirty-flag': false };
}

/** A backing file name as qemu-img shows it in full: a plain relative name joined to the naming image's directory; json: and protocols as they are. */
export function fullBackingName(name: string, image: string): string {
  if (name.startsWith('json:') || isAbsolute(name) || /^[^/]*:/.test(name)) return name;
  return join(dirname(image), name);
}
