/**
 * hiberfil.sys in the root directory: Windows' saved memory image. While
 * Windows is hibernated (or shut down with Fast Startup, which hibernates the
 * kernel session) its first bytes are "hibr"/"HIBR"; after resuming, Windows
 * writes "wake"/"WAKE" and later zeros. ntfs-3g refuses a read-write mount
 * when the header says hibernated (or when the file is shorter than its
 * 4096-byte header); the memory image may hold changes not yet on disk.
 */

export const HIBERFILE_NAME = 'hiberfil.sys';
export const HIBERFILE_HEADER_SIZE = 4096;

export type HibernationState = 'hibernated' | 'woken' | 'short' | 'none';

/** What the first bytes of hiberfil.sys (`header`, up to 4096 of them) say. */
export function hibernationState(header: Buffer): HibernationState {
  if (header.length < HIBERFILE_HEADER_SIZE) return 'short';
  const magic = header.toString('latin1', 0, 4);
  if (magic === 'hibr' || magic === 'HIBR') return 'hibernated';
  if (magic === 'wake' || magic === 'WAKE') return 'woken';
  return 'none';
}
