/**
 * The volume assemblers a guest runs over all its disks, in order (see
 * worklist.ts): one line per kind of volume. LUKS and md later.
 */
import type { VolumeAssembler } from './worklist.ts';
import { Lvm2Assembler } from '../volumes/lvm/assembler.ts';

export const VOLUME_ASSEMBLERS: readonly VolumeAssembler[] = [new Lvm2Assembler()];
