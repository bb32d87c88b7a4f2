/**
 * The qcow2 format driver: probe by magic, open a layer, then let the chain
 * open (through the backing policy) the data file and backing file the
 * header names.
 */
import { resolve } from 'node:path';
import type { BlockSource } from '@guestlens/block';
import { resolveBackingName, type LayerSpec } from '../../chain/backingName.ts';
import type { ReferencedFile } from '../../chain/backingPolicy.ts';
import { chainError } from '../../errors.ts';
import type { ImageFormatDriver } from '../layer.ts';
import { QCOW2_MAGIC, readHeader, type Qcow2Header } from './header.ts';
import { INCOMPAT_DATA_FILE } from './features.ts';
import { Qcow2Image } from './qcow2Image.ts';

export { Qcow2Image, type Qcow2OpenOptions } from './qcow2Image.ts';
export { readHeader, QCOW2_MAGIC, type Qcow2Header, type CompressionType } from './header.ts';

export const qcow2Format: ImageFormatDriver = {
  format: 'qcow2',
  // QEMU's qcow2_probe: the magic and any version from 2 on (the header parser then refuses versions it does not know, by number).
  probe: (head) => head.length >= 8 && head.readUInt32BE(0) === QCOW2_MAGIC && head.readUInt32BE(4) >= 2,
  open: async (file, ctx) => {
    const image = await Qcow2Image.open(file, { name: ctx.name, cache: ctx.cache, maxReadBytes: ctx.maxReadBytes });
    try {
      const dataFile = dataFileOf(image.header, image.name, ctx.spec);
      if (dataFile) image.dataFile = await ctx.openDataFile(dataFile);
      const backing = backingOf(image.header, ctx.spec, image.name);
      if (backing) image.backing = await ctx.openBacking(backing.ref, backing.spec);
    } catch (err) {
      // Closes what was attached, and the file (the chain opener closes it again, harmlessly).
      await image.close();
      throw err;
    }
    return image;
  },
};

/** The files a qcow2 header names: what the overlay's chain walk judges before running qemu-img. */
export interface Qcow2NamedFiles {
  header: Qcow2Header;
  dataFile?: ReferencedFile;
  backing?: { ref: ReferencedFile; spec: LayerSpec };
}

export async function qcow2NamedFiles(file: BlockSource, name: string, spec: LayerSpec = { filename: name }): Promise<Qcow2NamedFiles> {
  const header = await readHeader(file, name);
  return { header, dataFile: dataFileOf(header, name, spec), backing: backingOf(header, spec, name) ?? undefined };
}

function dataFileOf(header: Qcow2Header, image: string, spec: LayerSpec): ReferencedFile | undefined {
  if ((header.incompatibleFeatures & INCOMPAT_DATA_FILE) === 0n) return undefined;
  // A data-file node in the json: reference that reached this image replaces the header's name.
  const name = spec.dataFile ?? header.dataFileName ?? '';
  if (name === '') throw chainError(image, 'uses an external data file but names none');
  // QEMU opens the name from the header as a plain file name (never json: or a protocol) and,
  // unlike a backing file name, does not resolve a relative one against the image's directory.
  return { kind: 'data-file', image, name, path: resolve(name) };
}

function backingOf(header: Qcow2Header, spec: LayerSpec, image: string): { ref: ReferencedFile; spec: LayerSpec } | undefined {
  const storedName = header.backingFileName;
  let child: LayerSpec | null | undefined = spec.backing;
  if (child === undefined) child = storedName === undefined ? null : resolveBackingName(storedName, spec.filename, header.backingFormat, image);
  if (child === null) return undefined;
  return { ref: { kind: 'backing', image, name: storedName ?? child.filename, path: child.filename, format: child.format }, spec: child };
}
