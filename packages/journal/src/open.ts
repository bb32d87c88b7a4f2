/**
 * Opening the journal files of a machine: which names are journal files
 * (sd-journal reads "*.journal" and "*.journal~": the active system.journal
 * and user-UID.journal, archived system@SEQNUMID-SEQNUM-REALTIME.journal,
 * and files journald set aside after an unclean shutdown), and opening a set
 * of sources so that one unreadable file is reported, not fatal, as
 * journalctl --directory does.
 */
import type { BlockSource } from '@guestlens/block';
import { JournalFile, type JournalFileOptions } from './journalFile.ts';

export function isJournalFileName(name: string): boolean {
  return name.endsWith('.journal') || name.endsWith('.journal~');
}

export interface OpenedJournal {
  files: JournalFile[];
  /** Sources that could not be opened as journal files, with the reason. */
  failed: { source: BlockSource; error: unknown }[];
}

/** Open every source as a journal file; an error (not a journal, truncated, unknown flags) is collected, not thrown. */
export async function openJournalFiles(sources: BlockSource[], options: Omit<JournalFileOptions, 'name'> = {}): Promise<OpenedJournal> {
  const files: JournalFile[] = [];
  const failed: OpenedJournal['failed'] = [];
  for (const source of sources) {
    try {
      files.push(await JournalFile.open(source, options));
    } catch (error) {
      failed.push({ source, error });
    }
  }
  return { files, failed };
}
