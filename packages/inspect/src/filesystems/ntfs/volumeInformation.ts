/**
 * $Volume (MFT record 3): the label ($VOLUME_NAME) and the NTFS version and
 * volume flags ($VOLUME_INFORMATION). NTFS 1.2 is NT 4, 3.0 Windows 2000,
 * 3.1 everything since XP. The dirty flag is Windows' "not cleanly unmounted
 * / chkdsk needed".
 */
import { VOLUME_FLAGS, VOLUME_INFORMATION } from './layout.ts';

export interface VolumeInformation {
  label: string | undefined;
  majorVersion: number;
  minorVersion: number;
  flags: number;
  dirty: boolean;
}

export function parseVolumeInformation(nameValue: Buffer | undefined, infoValue: Buffer): VolumeInformation | string {
  if (infoValue.length < VOLUME_INFORMATION.flags + 2) return `$VOLUME_INFORMATION is ${infoValue.length} bytes, too short`;
  const flags = infoValue.readUInt16LE(VOLUME_INFORMATION.flags);
  return {
    label: nameValue && nameValue.length >= 2 ? nameValue.toString('utf16le', 0, nameValue.length & ~1) : undefined,
    majorVersion: infoValue[VOLUME_INFORMATION.major_ver],
    minorVersion: infoValue[VOLUME_INFORMATION.minor_ver],
    flags,
    dirty: (flags & VOLUME_FLAGS.IS_DIRTY) !== 0,
  };
}
