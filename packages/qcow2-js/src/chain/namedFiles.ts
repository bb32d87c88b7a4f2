/**
 * What one image file names besides itself, read by its own format's parser
 * without opening any of those files: the qcow2 header (through the one qcow2
 * header parser), VMDK descriptors (through the one descriptor parser, which
 * reads them as QEMU does), the parent locators of differencing VHD and VHDX
 * disks. The overlay's chain walk judges these names with the backing policy
 * before it lets qemu-img open the image.
 */
import type { BlockSource } from '@guestlens/block';
import { RawFileSource } from '../file/rawFile.ts';
import { INCOMPAT_DATA_FILE, AUTOCLEAR_DATA_FILE_RAW } from '../formats/qcow2/features.ts';
import { readHeader } from '../formats/qcow2/header.ts';
import { parentFileNameHint, resolveExtentName } from '../formats/vmdk/descriptor.ts';
import { describeTopFile } from '../formats/vmdk/extents.ts';
import { readRawSparseHeader } from '../formats/vmdk/sparseHeader.ts';
import { VpcImage } from '../formats/vpc/vpcImage.ts';
import { vpcParentOf } from '../formats/vpc/index.ts';
import { VhdxImage } from '../formats/vhdx/vhdxImage.ts';
import { vhdxParentOf } from '../formats/vhdx/index.ts';
import { chainError } from '../errors.ts';
import type { ReferencedFile } from './backingPolicy.ts';

export interface NamedFiles {
  /** The backing file name exactly as stored. */
  backing?: string;
  /** Where that name points, for formats that locate their parent by their own rules (VHD, VHDX parent locators). */
  backingPath?: string;
  /** The backing format recorded beside it (qcow2's header extension; vmdk parents are always vmdk). */
  backingFormat?: string;
  /**
   * The parent is one QEMU does not follow (a differencing VHD, which its vpc
   * driver reads as if it had none, or VHDX, which it refuses): a chain
   * QEMU opens would show other bytes than the guest's.
   */
  backingUnreadByQemu?: boolean;
  /** qcow2 external data file name as stored. */
  dataFile?: string;
  /** qcow2 external data file holds the guest data raw (autoclear bit 1). */
  dataFileRaw?: boolean;
  /** VMDK descriptor extent file names as stored. */
  extents?: string[];
  /** The same, resolved as QEMU resolves them (against the descriptor's directory, "file:" stripped). */
  extentPaths?: string[];
  /** Guest-visible size, when the header says it plainly (qcow2). */
  virtualSize?: number;
}

/**
 * What `path` (in `format`) names. With `check`, files that may name more
 * files themselves (a VMDK's sparse extents, which can embed a descriptor)
 * are judged by it, then opened and looked into: a nested descriptor is
 * refused, so nothing QEMU would open goes unjudged.
 */
export async function readNamedFiles(path: string, format: string, check?: (ref: ReferencedFile) => Promise<void>): Promise<NamedFiles> {
  if (!['qcow2', 'vmdk', 'vpc', 'vhdx'].includes(format)) return {};
  const file = await RawFileSource.open(path);
  try {
    if (format === 'qcow2') return await qcow2Names(file, path);
    if (format === 'vmdk') return await vmdkNames(file, path, check);
    // A VHD or VHDX guestlens cannot parse names nothing it could follow; qemu-img then says what is wrong with it.
    if (format === 'vpc') return await vpcNames(file, path).catch(() => ({}));
    if (format === 'vhdx') return await vhdxNames(file, path).catch(() => ({}));
    return {};
  } finally {
    await file.close();
  }
}

async function qcow2Names(file: BlockSource, path: string): Promise<NamedFiles> {
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
}

async function vmdkNames(file: BlockSource, path: string, check?: (ref: ReferencedFile) => Promise<void>): Promise<NamedFiles> {
  const top = await describeTopFile(file, path);
  const names: NamedFiles = {};
  const hint = parentFileNameHint(top.text, path);
  if (hint !== undefined) {
    names.backing = hint;
    names.backingFormat = 'vmdk';
  }
  const lines = top.descriptor?.extents ?? [];
  if (lines.length) {
    names.extents = lines.map((l) => l.name);
    names.extentPaths = lines.map((l) => resolveExtentName(l.name, path, path));
  }
  if (check) {
    for (const [i, line] of lines.entries()) {
      if (line.type !== 'SPARSE' && line.type !== 'VMFSSPARSE') continue;
      const extentPath = (names.extentPaths as string[])[i];
      await check({ kind: 'extent', image: path, name: line.name, path: extentPath });
      const extent = await RawFileSource.open(extentPath).catch(() => undefined);
      if (!extent) continue;
      try {
        const raw = await readRawSparseHeader(extent, extentPath).catch(() => undefined);
        if (raw && raw.capacity === 0 && raw.descriptorOffset !== 0) {
          throw chainError(path, `names extent ${JSON.stringify(line.name)} (${extentPath}), which is itself a descriptor; nested VMDK descriptors are not read`);
        }
      } finally {
        await extent.close();
      }
    }
  }
  return names;
}

async function vpcNames(file: BlockSource, path: string): Promise<NamedFiles> {
  const image = await VpcImage.open(file, { name: path });
  if (!image.differencing) return {};
  const parent = await vpcParentOf(image, file, { filename: path });
  return parent ? { backing: parent.ref.name, backingPath: parent.ref.path, backingFormat: 'vpc', backingUnreadByQemu: true } : {};
}

async function vhdxNames(file: BlockSource, path: string): Promise<NamedFiles> {
  const image = await VhdxImage.open(file, { name: path });
  if (!image.differencing) return {};
  const parent = vhdxParentOf(image, { filename: path });
  return parent ? { backing: parent.ref.name, backingPath: parent.ref.path, backingFormat: 'vhdx', backingUnreadByQemu: true } : {};
}
