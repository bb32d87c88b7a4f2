/**
 * @guestlens/inspect: from block sources to a guest — partition tables,
 * filesystem probe, filesystem drivers, and path-level access to files.
 */
export { openGuest, withGuest, Guest, type GuestDisk, type GuestFilesystemInfo, type GuestImageArg, type GuestWarning, type OpenGuestOptions } from './guest/guest.ts';
export { GuestFilesystem, type GuestReadStreamOptions, type ReadFileOptions } from './guest/guestFilesystem.ts';
export { openImageDefault, type BackingPolicy, type ImageOpener, type ImageOpenOptions, type ImageSpec, type OpenedImage } from './guest/imageOpener.ts';
export { resolvePath, MAX_SYMLINKS, type ResolvedPath, type ResolveOptions } from './guest/pathResolver.ts';
export { diskDevice, diskLetters, partitionDevice, canonicalDeviceName } from './guest/deviceName.ts';

export { readPartitionTable, SECTOR_SIZES, type PartitionTableOptions } from './volumes/partitionTable.ts';
export { MAX_PARTITIONS, type Partition, type PartitionKind, type PartitionScheme, type PartitionTable } from './volumes/partition.ts';
export { SliceSource, partitionSourceName } from './volumes/slice.ts';

export { probeFilesystem, extTypeFromFeatures, type ProbeResult, type ProbeUsage } from './probe/index.ts';

export { openFilesystem, driverFor, supportedFilesystemTypes, type FilesystemOpener } from './filesystems/registry.ts';
export type { DirEntry, FileStat, FileType, Filesystem, StatFs, Timestamp } from './filesystems/filesystem.ts';
export { openExt } from './filesystems/ext/index.ts';

export * from './errors.ts';

export { guestDf, isRetryable, type DfRow, type DfProblem, type GuestDf } from './df/guestDf.ts';
