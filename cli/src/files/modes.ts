/** File modes and types as ls(1), virt-ls and The Sleuth Kit print them. */
import type { FileType } from '@guestlens/inspect';

/** ls -l's type letter. */
export function typeLetter(type: FileType): string {
  return { file: '-', directory: 'd', symlink: 'l', chardev: 'c', blockdev: 'b', fifo: 'p', socket: 's', unknown: '?' }[type];
}

/** virt-ls -lR's type column ("u" where ls says "?"). */
export function virtLsType(type: FileType): string {
  return type === 'unknown' ? 'u' : typeLetter(type);
}

/** The nine permission characters with setuid, setgid and sticky folded in, as ls shows them. */
export function permissionString(mode: number): string {
  const bit = (b: number, c: string) => (mode & b ? c : '-');
  const special = (x: number, s: number, lower: string, upper: string) => (mode & s ? (mode & x ? lower : upper) : mode & x ? 'x' : '-');
  return (
    bit(0o400, 'r') + bit(0o200, 'w') + special(0o100, 0o4000, 's', 'S') +
    bit(0o040, 'r') + bit(0o020, 'w') + special(0o010, 0o2000, 's', 'S') +
    bit(0o004, 'r') + bit(0o002, 'w') + special(0o001, 0o1000, 't', 'T')
  );
}

/** ls -l's ten-character mode column. */
export function modeString(type: FileType, mode: number): string {
  return typeLetter(type) + permissionString(mode);
}
