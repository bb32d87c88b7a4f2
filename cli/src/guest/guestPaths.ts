/**
 * Guest paths as users type them: POSIX paths, and Windows paths as
 * virt-cat accepts them (C:\Windows\win.ini, /c/windows/...) mapped onto the
 * Windows root's tree (drive letters other than the system drive need the
 * registry's mapping).
 */
import type { FileTree } from '@guestlens/inspect';
import { UsageError } from '../errors.ts';

/** The path as the guest names it; on Windows guests matched without regard to case, as Windows matches names. */
export async function resolveGuestPath(tree: FileTree, input: string, windowsRoot: boolean): Promise<string> {
  const path = guestPath(input, windowsRoot);
  if (!windowsRoot) return path;
  const { caseInsensitivePath } = await import('@guestlens/inspect');
  return (await caseInsensitivePath(tree, path)) ?? path;
}

export function guestPath(input: string, windowsRoot: boolean): string {
  const drive = /^([A-Za-z]):(?:[\\/](.*))?$/.exec(input);
  if (drive) {
    if (!windowsRoot) throw new UsageError(`${input}: a Windows path, but the guest's root is not a Windows system`);
    return `/${(drive[2] ?? '').replace(/\\/g, '/')}`;
  }
  if (windowsRoot && /^\/[A-Za-z](\/|$)/.test(input)) return input.slice(2) || '/';
  return input;
}
