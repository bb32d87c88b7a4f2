/**
 * NTFS, read-only. `openNtfs` gives the Filesystem for a block source
 * holding one NTFS volume (a partition, or a whole disk formatted without a
 * partition table).
 */
import type { BlockSource } from '@guestlens/block';
import type { Filesystem } from '../filesystem.ts';
import { NtfsFilesystem, type NtfsOpenOptions } from './ntfsFilesystem.ts';

export { NtfsFilesystem, type NtfsOpenOptions } from './ntfsFilesystem.ts';
export { NtfsError, NtfsCorruptError, NtfsFixupError, NtfsUnsupportedError } from './errors.ts';
export type { NtfsLimits } from './volume.ts';
export type { NtfsMountState } from './mountState.ts';
export type { FileName, FileNamespace } from './fileName.ts';
export type { ReparsePoint } from './reparse.ts';
export type { StandardInformation } from './standardInformation.ts';
export type { VolumeInformation } from './volumeInformation.ts';

export async function openNtfs(source: BlockSource, opts?: NtfsOpenOptions): Promise<Filesystem> {
  return NtfsFilesystem.open(source, opts);
}
