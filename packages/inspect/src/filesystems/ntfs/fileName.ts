/**
 * $FILE_NAME: one name of a file in one directory (the key of that
 * directory's index entry, and an attribute of the file). A file has one per
 * hard link and namespace: a Win32 long name and a DOS 8.3 name (or one
 * name valid in both), or a POSIX name (case-sensitive, any character but
 * NUL and '/'). Its times are those of the last rename, kept apart from
 * $STANDARD_INFORMATION's; forensic timelines compare the two.
 */
import type { Timestamp } from '../filesystem.ts';
import { FILE_NAME_DOS, FILE_NAME_POSIX, FILE_NAME_WIN32, FILE_NAME_WIN32_AND_DOS, FN, mftRefRecord, mftRefSequence } from './layout.ts';
import { readNtfsTime } from './time.ts';

/** 'unknown' for a namespace byte above 3, which ntfs-3g still lists (as a long name). */
export type FileNamespace = 'posix' | 'win32' | 'dos' | 'win32+dos' | 'unknown';

export interface FileName {
  parentRecord: number;
  parentSequence: number;
  creationTime: Timestamp;
  lastDataChangeTime: Timestamp;
  lastMftChangeTime: Timestamp;
  lastAccessTime: Timestamp;
  allocatedSize: bigint;
  dataSize: bigint;
  fileAttributes: number;
  /** The reparse tag, for a reparse point without extended attributes. */
  reparseTag: number;
  namespace: FileNamespace;
  /** The name's UTF-16LE bytes. */
  nameRaw: Buffer;
  name: string;
}

const NAMESPACES: Record<number, FileNamespace> = {
  [FILE_NAME_POSIX]: 'posix',
  [FILE_NAME_WIN32]: 'win32',
  [FILE_NAME_DOS]: 'dos',
  [FILE_NAME_WIN32_AND_DOS]: 'win32+dos',
};

/** Parse a $FILE_NAME value (an attribute's or an index key); a string is why it is corrupt. */
export function parseFileName(v: Buffer): FileName | string {
  if (v.length < FN.file_name) return `$FILE_NAME is ${v.length} bytes, shorter than its header`;
  const len = v[FN.file_name_length];
  if (len === 0) return '$FILE_NAME has an empty name';
  if (FN.file_name + len * 2 > v.length) return `$FILE_NAME's name (${len} characters) runs past its ${v.length} bytes`;
  const type = v[FN.file_name_type];
  const namespace = NAMESPACES[type] ?? 'unknown';
  const ref = v.readBigUInt64LE(FN.parent_directory);
  const nameRaw = Buffer.from(v.subarray(FN.file_name, FN.file_name + len * 2));
  return {
    parentRecord: mftRefRecord(ref),
    parentSequence: mftRefSequence(ref),
    creationTime: readNtfsTime(v, FN.creation_time),
    lastDataChangeTime: readNtfsTime(v, FN.last_data_change_time),
    lastMftChangeTime: readNtfsTime(v, FN.last_mft_change_time),
    lastAccessTime: readNtfsTime(v, FN.last_access_time),
    allocatedSize: v.readBigInt64LE(FN.allocated_size),
    dataSize: v.readBigInt64LE(FN.data_size),
    fileAttributes: v.readUInt32LE(FN.file_attributes),
    reparseTag: v.readUInt32LE(FN.reparse_point_tag),
    namespace,
    nameRaw,
    name: nameRaw.toString('utf16le'),
  };
}
