/**
 * The FAT driver's errors: the shared filesystem error family (../errors.ts)
 * worded in FAT's terms, pointing at fsck.fat. `FatError` is the family's
 * base under FAT's name, so `err instanceof FatError` holds for every driver
 * error whatever its subclass.
 */
import { FilesystemCorruptError, FilesystemError } from '../errors.ts';

export { FilesystemError as FatError };

const FSCK = 'Check it with fsck.fat -n on a copy';

/** An on-disk structure that cannot be right: `structure` names it ("boot sector", "FAT entry 123", "directory entry at byte 4096"). */
export class FatCorruptError extends FilesystemCorruptError {
  constructor(image: string, structure: string, offset: number | undefined, detail: string, options: { retryable?: boolean; fsck?: string } = {}) {
    super(image, structure, offset, detail, { retryable: options.retryable, wording: 'FAT filesystem is corrupt', fsck: options.fsck ?? FSCK });
  }
}

