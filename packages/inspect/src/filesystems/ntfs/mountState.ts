/**
 * What Windows left behind that a read cannot see: the $Volume dirty flag, a
 * hibernated or Fast-Started session (hiberfil.sys, a version 2.0 $LogFile)
 * and an unclean journal. ntfs-3g refuses to mount read-write in all but the
 * first of these states (its read-only mount shows the disk as it is, as we
 * do); each becomes a reason why statfs and the tree are not the whole
 * truth, since Windows holds changes not yet written to the disk.
 */
import type { HibernationState } from './hibernation.ts';
import type { LogFileState } from './logFile.ts';

export interface NtfsMountState {
  dirty: boolean;
  hibernation: HibernationState | 'unreadable';
  logFile: LogFileState;
  /** Why the view is not the whole truth (empty when it is). */
  inexactReasons: string[];
}

export function describeMountState(dirty: boolean, hibernation: HibernationState | 'unreadable', logFile: LogFileState, hibernationProblem?: string): NtfsMountState {
  const reasons: string[] = [];
  if (dirty) reasons.push('the volume is marked dirty (Windows did not unmount it cleanly, or chkdsk is due): Windows may have changes not yet on the disk');
  if (hibernation === 'hibernated') reasons.push('Windows is hibernated or was shut down with Fast Startup (hiberfil.sys has a HIBR header): its saved memory holds changes not yet on the disk, and ntfs-3g refuses to mount it read-write');
  else if (hibernation === 'short') reasons.push('hiberfil.sys is shorter than its 4096-byte header (a hibernated non-system volume, to ntfs-3g, which refuses to mount it read-write)');
  else if (hibernation === 'woken') reasons.push('hiberfil.sys has a WAKE header: Windows resumed from hibernation and may still be running with changes not yet on the disk');
  else if (hibernation === 'unreadable') reasons.push(`hiberfil.sys could not be read (${hibernationProblem ?? 'unknown reason'}), so hibernation cannot be ruled out`);
  if (logFile.state === 'cached') reasons.push(`Windows keeps metadata cached for Fast Startup or hibernation ($LogFile restart area version ${logFile.majorVersion}.${logFile.minorVersion}): changes are not yet on the disk, and ntfs-3g refuses to mount it read-write`);
  else if (logFile.state === 'unclean') reasons.push('the $LogFile shows an unclean shutdown: Windows journaled changes it has not yet applied, and ntfs-3g refuses to mount it read-write');
  else if (logFile.state === 'unreadable') reasons.push(`the $LogFile could not be checked (${logFile.reason})`);
  return { dirty, hibernation, logFile, inexactReasons: reasons };
}
