/**
 * What one image file names besides itself, read by its own format's parser
 * without opening any of those files: the qcow2 header (through the one qcow2
 * header parser) and VMDK descriptors. The overlay's chain walk judges these
 * names with the backing policy before it lets qemu-img open the image.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { RawFileSource } from '../file/rawFile.ts';
import { INCOMPAT_DATA_FILE, AUTOCLEAR_DATA_FILE_RAW } from '../formats/qcow2/features.ts';
import { readHeader } from '../formats/qcow2/header.ts';
import { vmdkExtentNames } from '../formats/vmdk/descriptor.ts';

export interface NamedFiles {
  /** The backing file name exactly as stored. */
  backing?: string;
  /** The backing format recorded beside it (qcow2's header extension). */
  backingFormat?: string;
  /** qcow2 external data file name as stored. */
  dataFile?: string;
  /** qcow2 external data file holds the guest data raw (autoclear bit 1). */
  dataFileRaw?: boolean;
  /** VMDK descriptor extent file names as stored. */
  extents?: string[];
  /** Guest-visible size, when the header says it plainly (qcow2). */
  virtualSize?: number;
}

export async function readNamedFiles(path: string, format: string): Promise<NamedFiles> {
  if (format === 'qcow2') {
    const file = await RawFileSource.open(path);
    try {
      const h = await readHeader(file, path);
      const names: NamedFiles = { virtualSize: h.size };
      if (h.backingFileName !== undefined) names.backing = h.backingFileName;
      if (h.backingFormat !== undefined) names.backingFormat = h.backingFormat;
      // QEMU ignores a data file name without the incompatible-feature bit.
      if (h.incompatibleFeatures & INCOMPAT_DATA_FILE) {
        names.dataFile = h.dataFileName;
        names.dataFileRaw = (h.autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) !== 0n;
      }
      return names;
    } finally {
      await file.close();
    }
  }
  if (format === 'vmdk') {
    // Synchronous: a handful of small reads of one descriptor, cheaper than thread-pool round trips.
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
    try {
      return { extents: vmdkExtentNames(fd) };
    } finally {
      closeSync(fd);
    }
  }
  return {};
}
