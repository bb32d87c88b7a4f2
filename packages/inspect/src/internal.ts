/**
 * Internals of @guestlens/inspect that tests (and diagnostics) reach for but
 * that are not part of the public API: they may change with any commit.
 */
export { ExtFilesystem, type ExtMountState, type ExtOpenOptions } from './filesystems/ext/extFilesystem.ts';
export { ExtError, ExtCorruptError, ExtChecksumError, ExtUnsupportedError } from './filesystems/ext/errors.ts';
export { XfsFilesystem, type XfsMountState, type XfsOpenOptions } from './filesystems/xfs/xfsFilesystem.ts';
export { assembleGuest, type AssembledGuest } from './guest/worklist.ts';
export { LivenessWatch } from './guest/liveness.ts';
export { BlockCache } from './filesystems/blockCache.ts';
export { crc32c, crc32cStandard } from './filesystems/crc32c.ts';
export { decodeName, nameCandidates } from './filesystems/names.ts';
export { readRuns, fillAndMergeRuns, type BlockRun } from './filesystems/runs.ts';
