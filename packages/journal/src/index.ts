/**
 * @guestlens/journal: systemd's binary journal files read from any
 * BlockSource (a host file, a file inside a guest file system), without
 * systemd. Files are merged and filtered as journalctl does, and printed in
 * journalctl's output modes byte for byte. See README.md for the API.
 */
export { JournalFile, DEFAULT_MAX_DATA_BYTES, type JournalFileOptions, type EntryObject } from './journalFile.ts';
export type { JournalHeader } from './header.ts';
export { JournalReader, JournalEntry, parseCursor, type Location } from './journalReader.ts';
export { Matches, matchIsValid } from './matches.ts';
export { JournalQuery, buildMatches, parsePriorities, type JournalQueryOptions } from './query.ts';
export { listBoots, resolveBoot, parseBootDescriptor, type BootInfo, type BootSpec } from './boots.ts';
export { mangleUnitName, addMatchesForUnit, fnmatch } from './units.ts';
export { parseTimestamp } from './time.ts';
export {
  formatEntry,
  entryRecord,
  JournalPrinter,
  bootSeparator,
  isQuietMode,
  NO_ENTRIES,
  OUTPUT_MODES,
  formatBytes,
  stripTabAnsi,
  type OutputMode,
  type FormatOptions,
  type EntryRecord,
} from './format.ts';
export { isPrintable, escapeControl } from './utf8.ts';
export { isJournalFileName, openJournalFiles, type OpenedJournal } from './open.ts';
export { jenkinsHash64, siphash24 } from './hash.ts';
export { JournalError, JournalCorruptError, JournalTruncatedError, JournalUnsupportedError, JournalDecompressError, JournalQueryError } from './errors.ts';
export type { Compression } from './compression.ts';
