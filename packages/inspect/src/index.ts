/**
 * @guestlens/inspect: from block sources to a guest — partition tables,
 * volumes assembled across disks, the filesystem probe, filesystem drivers,
 * path-level access to files, refresh and retry for live images, and the
 * jobs over them (df). Internals that only tests use are in internal.ts.
 */
export {
  openGuest,
  withGuest,
  Guest,
  type GuestDisk,
  type GuestDevice,
  type GuestDeviceKind,
  type GuestFilesystemInfo,
  type GuestImageArg,
  type GuestWarning,
  type OpenGuestOptions,
  type RefreshResult,
} from './guest/guest.ts';
export { GuestFilesystem, type GuestReadStreamOptions, type ReadFileOptions } from './guest/guestFilesystem.ts';
export { openImageWithQemu, openInsteadWithQemu } from './guest/qemuReader.ts';
export { openImageDefault, type BackingPolicy, type ImageOpener, type ImageOpenOptions, type ImageSpec, type OpenedImage } from './guest/imageOpener.ts';
export { resolvePath, MAX_SYMLINKS, type ResolvedPath, type ResolveOptions } from './guest/pathResolver.ts';
export { diskDevice, diskLetters, partitionDevice, lvDevice, btrfsSubvolumeDevice, partitionSourceName, canonicalDeviceName } from './guest/deviceName.ts';
export { retryWhileLive, withRetry, DEFAULT_ATTEMPTS, type RetryOptions, type Attempted } from './guest/retry.ts';
export type { Liveness } from './guest/liveness.ts';
export type { VolumeAssembler, AssembledDevice } from './guest/worklist.ts';

export { readPartitionTable, SECTOR_SIZES, type PartitionTableOptions } from './volumes/partitionTable.ts';
export { MAX_PARTITIONS, type Partition, type PartitionKind, type PartitionScheme, type PartitionTable } from './volumes/partition.ts';

export { probeFilesystem, extTypeFromFeatures, type ProbeResult, type ProbeUsage } from './probe/index.ts';

export { openFilesystem, driverFor, driverForType, supportedFilesystemTypes, DRIVERS, type FilesystemOpener, type FilesystemDriver } from './filesystems/registry.ts';
export type {
  DirEntry,
  FileExtent,
  FileStat,
  FileType,
  Filesystem,
  FilesystemOpenOptions,
  InodeEntry,
  InodeEnumerationOptions,
  StatFs,
  Timestamp,
} from './filesystems/filesystem.ts';
export { FilesystemError, FilesystemCorruptError, FilesystemChecksumError, FilesystemUnsupportedError, type FilesystemErrorCode } from './filesystems/errors.ts';
export { openExt } from './filesystems/ext/index.ts';
export { openXfs } from './filesystems/xfs/index.ts';

export * from './errors.ts';

export { FileTree } from './guest/guestFilesystem.ts';
export { GuestTree, normaliseMountpoint, type MountSpec, type MountedDevice, type WalkEntry, type WalkOptions } from './guest/guestTree.ts';
export { resolveInGuest, type MountTable, type MountedFilesystem } from './guest/pathResolver.ts';
export { inspectGuest, mountWhatReads, type GuestInspection, type InspectOptions, type OperatingSystem, type FilesystemSummary } from './os/inspect.ts';
export { parseFstab, mountMapFromFstab, resolveSpec, parseMapperName, type FstabEntry, type MountMapEntry, type UnmatchedEntry } from './os/fstab.ts';
export type { Application, ApplicationList } from './os/packages/application.ts';
export { elfArchitecture } from './os/elf.ts';
export { caseInsensitivePath } from './os/windows.ts';
export { GuestFileSource } from './guest/fileSource.ts';

export { guestDf, readGuestDf, isRetryable, type DfRow, type DfProblem, type GuestDf, type ReadDfOptions } from './df/guestDf.ts';
