/**
 * The systemd journal file format: header, object headers, entry arrays,
 * data and field objects and their hash tables, compressed payloads. Seeds
 * by systemd-journal-remote (plain and compressed entries).
 */
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { JournalFile, JournalReader } from '@guestlens/journal';
import { writeJournal, variedEntries } from '../../../packages/journal/test/support/fixtures.ts';
import type { FuzzTarget } from '../target.ts';
import { typedOnly } from '../target.ts';
import { READ_BUDGET } from './support.ts';

const target: FuzzTarget = {
  name: 'journal',
  about: 'systemd journal header, objects, entry arrays, hash tables, compression',
  async seeds(dir) {
    const path = join(dir, 'system.journal');
    await writeJournal(path, variedEntries(80));
    const data = await readFile(path);
    // The header and the first objects; the rest are found by splicing and the header's offsets.
    return [{ name: 'varied', data, hot: [[0, 272], [272, Math.min(16384, data.length - 272)]] }];
  },
  async fuzz(input) {
    const file = await typedOnly(() => JournalFile.open(input.source('fuzz.journal', READ_BUDGET)));
    if (!file) return;
    try {
      const reader = new JournalReader([file]);
      await typedOnly(async () => {
        for (let n = 0; n < 300; n++) {
          const e = await reader.next();
          if (!e) break;
          await e.fields();
        }
      });
      await typedOnly(async () => {
        for (let n = 0; n < 20 && (await reader.previous()); n++);
      });
    } finally {
      await file.close().catch(() => undefined);
    }
  },
};
export default target;
