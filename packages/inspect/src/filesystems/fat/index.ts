/**
 * FAT12/16/32 ("vfat"), read-only. `openFat` gives the Filesystem for a
 * block source holding one FAT volume (an EFI system partition, a floppy
 * image, a whole disk).
 */
import type { BlockSource } from '@guestlens/block';
import type { Filesystem } from '../filesystem.ts';
import { FatFilesystem, type FatOpenOptions } from './fatFilesystem.ts';

export { FatFilesystem, type FatOpenOptions, type FatDeletedDirEntry } from './fatFilesystem.ts';
export { FatError, FatCorruptError } from './errors.ts';
export type { FatLimits } from './volume.ts';

export async function openFat(source: BlockSource, options?: FatOpenOptions): Promise<Filesystem> {
  return FatFilesystem.open(source, options);
}
