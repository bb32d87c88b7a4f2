/**
 * Directories: the $I30 index, keyed by $FILE_NAME. Listing shows what
 * ntfs-3g's readdir shows with its default options: every name but DOS 8.3
 * aliases (a name valid in both namespaces is shown once), without the
 * metadata files (records 0..15 but the root) and without the root's
 * reference to itself. Lookups see every name (a DOS alias, "$MFT" too), and
 * are exact by default as ntfs-3g's are; a case-insensitive lookup (Windows'
 * own semantics) finds the first name equal once upper-cased with $UpCase.
 */
import { collateFileNames, collateIgnoringCase, utf16FromBytes, type Utf16 } from './collate.ts';
import { parseFileName, type FileName } from './fileName.ts';
import { IndexTree } from './indexTree.ts';
import type { NtfsInode } from './inode.ts';
import { FILE_FIRST_USER, FILE_ROOT, FN, I30, mftRefRecord, mftRefSequence } from './layout.ts';
import type { NtfsVolume } from './volume.ts';
import { directoryTooLarge } from '../directoryLimit.ts';

export interface DirectoryEntry {
  fileName: FileName;
  ino: number;
  sequence: number;
}

export function directoryIndex(vol: NtfsVolume, dir: NtfsInode): IndexTree {
  const tree = IndexTree.open(vol, dir, I30, 'filename');
  if (!tree) throw vol.error('ENOTDIR', `MFT record ${dir.number} has no $I30 index: not a directory`);
  return tree;
}

/** Every entry of the directory index, in ntfs-3g's readdir order, DOS names included. */
export async function* indexEntries(vol: NtfsVolume, dir: NtfsInode): AsyncGenerator<DirectoryEntry> {
  const tree = directoryIndex(vol, dir);
  let n = 0;
  for await (const e of tree.entries()) {
    if (++n > vol.limits.maxDirectoryEntries) throw directoryTooLarge(vol.image, `directory ${dir.number}`, vol.limits.maxDirectoryEntries);
    const fileName = parseFileName(e.key);
    if (typeof fileName === 'string') throw vol.corrupt(`index entry of directory ${dir.number}`, undefined, fileName);
    yield { fileName, ino: mftRefRecord(e.fileRef), sequence: mftRefSequence(e.fileRef) };
  }
}

/** Whether readdir shows this entry (ntfs-3g's ntfs_filldir and its filler with default options). */
export function listed(e: DirectoryEntry): boolean {
  if (e.ino === FILE_ROOT) return false;
  if (e.ino < FILE_FIRST_USER) return false;
  return e.fileName.namespace !== 'dos';
}

/** The entry named `name` (exactly, or ignoring case), by descent of the B+ tree. */
export async function findEntry(vol: NtfsVolume, dir: NtfsInode, name: Utf16, ignoreCase: boolean): Promise<DirectoryEntry | undefined> {
  const tree = directoryIndex(vol, dir);
  const compare = ignoreCase ? collateIgnoringCase : collateFileNames;
  const e = await tree.find((key) => compare(name, keyName(key), vol.upcase));
  if (!e) return undefined;
  const fileName = parseFileName(e.key);
  if (typeof fileName === 'string') throw vol.corrupt(`index entry of directory ${dir.number}`, undefined, fileName);
  return { fileName, ino: mftRefRecord(e.fileRef), sequence: mftRefSequence(e.fileRef) };
}

/** The name in a $FILE_NAME index key (the parser checked it lies in the key). */
function keyName(key: Buffer): Utf16 {
  const len = key[FN.file_name_length];
  return utf16FromBytes(key.subarray(FN.file_name, FN.file_name + len * 2));
}
