/**
 * The volume assemblers a guest runs over all its disks, in order (see
 * worklist.ts): one line per kind of volume. LVM2 comes with its reader;
 * LUKS and md later.
 */
import type { VolumeAssembler } from './worklist.ts';

export const VOLUME_ASSEMBLERS: readonly VolumeAssembler[] = [];
